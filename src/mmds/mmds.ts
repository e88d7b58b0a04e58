/**
 * One microVM's MMDS wired together: a store, a token authority and the guest handler, sharing
 * one metrics object. The API edits `store` and `options` (pre-boot); each network interface
 * that carries MMDS gets its own network stack from createNetworkStack when the device is built
 * (as in Firecracker, every such interface has its own TCP state over the one shared store).
 */
import { type Clock, monotonicClock } from '../ratelimit/clock';
import { MmdsStore } from './data-store';
import { MmdsGuestHandler } from './guest-handler';
import { MmdsMetrics } from './metrics';
import { MmdsNetworkStack } from './net/network-stack';
import { DEFAULT_MMDS_OPTIONS, type MmdsOptions } from './options';
import { TokenAuthority } from './token-authority';

export interface Mmds {
  store: MmdsStore;
  tokens: TokenAuthority;
  handler: MmdsGuestHandler;
  metrics: MmdsMetrics;
  /** Mutable: the handler reads it on every request; the address is read when a stack is made. */
  options: MmdsOptions;
  /** A stack answering at the current options' address, for one network device. */
  createNetworkStack(): MmdsNetworkStack;
}

export function createMmds(init: { options?: Partial<MmdsOptions>; sizeLimit?: number; clock?: Clock; instanceId?: string } = {}): Mmds {
  const clock = init.clock ?? monotonicClock;
  const options: MmdsOptions = { ...DEFAULT_MMDS_OPTIONS, ...init.options };
  const metrics = new MmdsMetrics();
  const store = new MmdsStore({ sizeLimit: init.sizeLimit });
  const tokens = new TokenAuthority({ clock });
  if (init.instanceId !== undefined) tokens.setInstanceId(init.instanceId);
  const handler = new MmdsGuestHandler({ store, tokens, metrics, options: () => options });
  const createNetworkStack = (): MmdsNetworkStack => new MmdsNetworkStack({
    respond: (head) => handler.respondToBytes(head), ipv4Address: options.ipv4Address, clock, metrics,
  });
  return { store, tokens, handler, metrics, options, createNetworkStack };
}
