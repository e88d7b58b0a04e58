import { FirecrackerClient } from 'sparkler';

async function main(): Promise<void> {
  // Any Firecracker-compatible API socket: Sparkler's, or an unmodified Firecracker's.
  const api = new FirecrackerClient('/tmp/firecracker.socket');
  await api.putBootSource({ kernel_image_path: '/path/to/vmlinux', boot_args: 'console=ttyS0 reboot=k panic=1' });
  await api.putMachineConfig({ vcpu_count: 2, mem_size_mib: 256 });
  await api.putVsock({ guest_cid: 3, uds_path: '/tmp/v.sock' });
  await api.startInstance();
  console.log((await api.describeInstance()).state); // Running
}

void main();
