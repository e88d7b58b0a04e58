/** Errors the SDK raises: a stable `code` for programs, a sentence for people. */
export class SparklerSdkError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SparklerSdkError';
  }
}

/** The agent's framing was violated (a frame too large, empty, or cut off). */
export class AgentProtocolError extends SparklerSdkError {
  constructor(message: string) {
    super('EAGENTPROTOCOL', message);
    this.name = 'AgentProtocolError';
  }
}

/** The agent answered a request with an error (a missing file, a command not found). */
export class AgentError extends SparklerSdkError {
  constructor(message: string) {
    super('EAGENT', message);
    this.name = 'AgentError';
  }
}

/** An API call answered with a non-2xx status; `fault` is Firecracker's fault_message. */
export class ApiCallError extends SparklerSdkError {
  constructor(readonly status: number, readonly fault: string, readonly errorCode: string | undefined, what: string) {
    super(errorCode ?? 'EAPI', `${what} failed with ${status}: ${fault}`);
    this.name = 'ApiCallError';
  }
}
