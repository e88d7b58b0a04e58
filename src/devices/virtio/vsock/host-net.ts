/**
 * The host side of vsock as the muxer sees it: Unix stream sockets. The interface is what
 * node:net's Socket and Server already offer (so the real one is a thin adapter and the
 * sockets run on the VMM thread's libuv loop like every other fd); tests inject fakes.
 */
import type { EventEmitter } from 'node:events';

/** One host stream socket. Events: 'connect', 'data' (Buffer), 'end', 'drain', 'error', 'close'. */
export interface HostStream extends EventEmitter {
  /** Queues bytes; `done` runs once they reached the kernel. False: past the high-water mark. */
  write(data: Uint8Array, done?: (err?: Error | null) => void): boolean;
  /** Sends FIN after the queued bytes (half close). */
  end(): void;
  destroy(): void;
  /** Stop and restart reading (the kernel's socket buffer then pushes back on the peer). */
  pause(): void;
  resume(): void;
}

export interface HostListener {
  close(): void;
}

export interface HostNet {
  /** Listens on a Unix socket path; `onError` gets failures to bind or accept. */
  listen(path: string, onConnection: (stream: HostStream) => void, onError: (err: Error) => void): HostListener;
  /** Starts connecting to a Unix socket path: the stream emits 'connect' or 'error'. */
  connect(path: string): HostStream;
}

/** The real one: node:net, loaded only when a VM has a vsock device. */
export function nodeHostNet(): HostNet {
  const net = require('node:net') as typeof import('node:net');
  return {
    listen(path, onConnection, onError) {
      // allowHalfOpen: a host peer's FIN becomes a vsock SHUTDOWN, not the end of our sending.
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (s) => onConnection(s as HostStream));
      server.on('error', onError);
      server.listen(path);
      return { close: () => server.close() };
    },
    connect(path) {
      return net.createConnection({ path, allowHalfOpen: true }) as HostStream;
    },
  };
}
