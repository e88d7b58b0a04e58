/** virtio-vsock with Firecracker's hybrid Unix-socket backend: what its spec and tests import. */
export { VirtioVsock, VSOCK_QUEUE_SIZE } from './device';
export type { VirtioVsockOptions } from './device';
export { VsockMuxer, MAX_CONNECTIONS, FIRST_LOCAL_PORT } from './muxer';
export { VsockMetrics } from './metrics';
export { parseConnectLine } from './connect-line';
export type { HostNet, HostStream } from './host-net';
