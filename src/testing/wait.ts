/** Polls `cond` until it holds; fails after `ms` instead of hanging the suite. */
export async function waitFor(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * Waits until a Unix socket accepts a connection. The socket file appears at bind(2), a moment
 * before listen(2): a connect in between is refused, so the file's existence is not enough.
 */
export async function waitForSocket(socketPath: string, what: string, ms = 20_000): Promise<void> {
  const { canConnect } = await import('../bench/proc');
  const deadline = Date.now() + ms;
  while (!(await canConnect(socketPath))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
