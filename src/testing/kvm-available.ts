import * as fs from 'node:fs';

/** Why real-KVM tests cannot run here, or undefined when they can. */
export function kvmUnavailableReason(): string | undefined {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return undefined;
  } catch (err) {
    return `/dev/kvm is not usable here (${(err as NodeJS.ErrnoException).code}); real-KVM tests need it`;
  }
}
