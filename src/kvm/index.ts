export { Kvm } from './kvm';
export { VmFd, IOEVENTFD_FLAG } from './vm';
export { VcpuFd } from './vcpu';
export { KvmRun, KVM_EXIT, KVM_SYSTEM_EVENT, exitReasonName } from './run';
export { KVM_CAP } from './ioctl-numbers';
