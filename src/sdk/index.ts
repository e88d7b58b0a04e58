/**
 * Sparkler's SDK: `import { MicroVM } from 'sparkler'`. Start a microVM, run commands and move
 * files through its guest agent; or drive any Firecracker-compatible VMM with FirecrackerClient.
 */
export { MicroVM, SDK_BOOT_ARGS } from './microvm';
export type { MicroVMOptions, MicroVMRestoreOptions, MicroVMEvents } from './microvm';
export { FirecrackerClient } from './firecracker-client';
export type { FirecrackerClientOptions } from './firecracker-client';
export { AgentClient, AGENT_PORT, dialVsock, dialUnix } from './agent-client';
export type { Dial, Dialed, ExecOptions, ExecResult } from './agent-client';
export { SparklerSdkError, AgentError, AgentProtocolError, ApiCallError } from './errors';
export type * as wire from '../api/wire/definitions';
