/**
 * The chroot of a VMM claimed from a pool of pre-jailed VMMs (docs/pool.md): the VMM sees only
 * what is inside it, as the jail's uid. The files a VM needs are put there (a hard link, or a
 * copy across file systems) and named to the VMM by their path inside; the sockets and the FIFO
 * it opens are made there too. The jail (`<base>/<exec>/<id>`) is the claimer's, removed by stop().
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export class JailedFiles {
  readonly uid: number;
  readonly gid: number;

  constructor(readonly root: string) {
    const st = fs.statSync(root); // the jailer makes the root owned by the jail's uid:gid
    this.uid = st.uid;
    this.gid = st.gid;
  }

  /** Where a path inside the jail is on the host. */
  onHost(inside: string): string {
    return path.join(this.root, inside);
  }

  /**
   * Puts `hostFile` in the jail under its own name and returns its path there. A drive the VM
   * writes is handed to the jail's uid (the link is the same file: give each VM its own copy, as
   * without a jail); a read-only file the uid could not read is copied and the copy handed over.
   */
  place(hostFile: string, writable: boolean): string {
    const name = path.basename(hostFile);
    const target = this.onHost(name);
    fs.rmSync(target, { force: true });
    const worldReadable = (fs.statSync(hostFile).mode & 0o004) !== 0;
    if (writable || worldReadable) {
      try {
        fs.linkSync(hostFile, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        fs.copyFileSync(hostFile, target);
      }
    } else {
      fs.copyFileSync(hostFile, target);
    }
    if (writable || !worldReadable) fs.chownSync(target, this.uid, this.gid);
    return `/${name}`;
  }

  /** The jail's own folder (`<base>/<exec>/<id>`), which the claimer removes when done. */
  remove(): void {
    fs.rmSync(path.dirname(this.root), { recursive: true, force: true });
  }
}
