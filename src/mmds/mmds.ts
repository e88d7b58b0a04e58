/**
 * One microVM's MMDS wired together: a store, a token authority, the guest handler and a
 * network stack that share one metrics object. The network device takes `stack`; the API
 * takes `store` and changes `options`.
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
  stack: MmdsNetworkStack;
  metrics: MmdsMetrics;
  options: MmdsOptions;
}

export function createMmds(init: { options?: Partial<MmdsOptions>; sizeLimit?: number; clock?: Clock; instanceId?: string } = {}): Mmds {
  const clock = init.clock ?? monotonicClock;
  const options: MmdsOptions = { ...DEFAULT_MMDS_OPTIONS, ...init.options };
  const metrics = new MmdsMetrics();
  const store = new MmdsStore({ sizeLimit: init.sizeLimit });
  const tokens = new TokenAuthority({ clock });
  if (init.instanceId !== undefined) tokens.setInstanceId(init.instanceId);
  const handler = new MmdsGuestHandler({ store, tokens, metrics, options: () => options });
  const stack = new MmdsNetworkStack({
    respond: (head) => handler.respondToBytes(head), ipv4Address: options.ipv4Address, clock, metrics,
  });
  return { store, tokens, handler, stack, metrics, options };
}
