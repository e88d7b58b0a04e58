import { MicroVM } from 'sparkler';

async function main(): Promise<void> {
  // Default kernel and initramfs: the project's guest artifacts (with the agent inside).
  const vm = await MicroVM.start({ vcpus: 2, memMiB: 256 });
  try {
    const r = await vm.exec(['sh', '-c', 'uname -r; exit 3']);
    console.log(r.exitCode, r.stdout.toString()); // 3 '6.1.…\n'
    await vm.writeFile('/tmp/data.bin', Buffer.from('hello'));
    const back = await vm.readFile('/tmp/data.bin');
    console.log(back.toString()); // hello
  } finally {
    await vm.stop();
  }
}

void main();
