/**
 * Coalesced PIO for the UART's transmit register. A console-on boot makes ~22,000 exits, half of
 * them THR writes and half the LSR polls before them, each a round trip to the VMM thread. While
 * the guest transmits by polling (serial.ts,
 * PolledTransmitHook), KVM queues the THR writes in its coalesced ring instead of exiting, and
 * the VMM applies them before it handles the next exit (vcpu-runner.ts) - the LSR poll that
 * precedes the next character - or, for a last write no exit follows, shortly after.
 * Hosts without KVM_CAP_COALESCED_PIO keep one exit per write.
 */
import { COM1_PORT } from '../arch/x86_64/layout';
import { Serial } from '../devices/legacy/serial';
import { CoalescedRing, CoalescedWrite } from '../kvm/coalesced-ring';
import { KVM_CAP } from '../kvm/ioctl-numbers';
import { Kvm } from '../kvm/kvm';
import { VcpuFd } from '../kvm/vcpu';
import { VmFd } from '../kvm/vm';
import { native, NativeShim } from '../native';
import { SerialFastPath } from './serial-fast-path';

const PAGE_SIZE = 4096;

/** The ring KVM queues writes in, and whether it queues any right now. */
export interface QueuedWrites {
  ring: { drain(apply: CoalescedWrite): number };
  queuing(): boolean;
  /** The vCPU loop's fast path, where it replaces coalesced PIO: attached to every vCPU, closed at the end. */
  fastPath?: SerialFastPath;
}

/**
 * Takes COM1's console output off the exit path: KVM's coalesced PIO queues the THR writes
 * (no exit) and the vCPU loop's fast path (serial-fast-path.ts) answers the LSR polls, where
 * each is available; the fast path takes the THR writes too where KVM cannot queue them. Either
 * alone works; undefined where neither can. The fast path is opt-in (SPARKLER_FAST_PIO=1) until an
 * intermittent console stall is explained; SPARKLER_NO_COALESCED_PIO=1 turns KVM's queue off.
 */
export function queueSerialTransmit(kvm: Kvm, vm: VmFd, vcpu: VcpuFd, serial: Serial, shim: NativeShim = native()): QueuedWrites | undefined {
  const coalesced = coalescedTransmit(kvm, vm, vcpu, serial);
  const fastPath = SerialFastPath.create(shim, serial, process.env, coalesced);
  if (fastPath) return { ring: fastPath, queuing: coalesced?.queuing ?? (() => false), fastPath };
  return coalesced && { ring: coalesced.ring, queuing: coalesced.queuing };
}

/** Registers COM1's THR as a coalesced zone while the guest transmits by polling; undefined where KVM cannot. */
function coalescedTransmit(kvm: Kvm, vm: VmFd, vcpu: VcpuFd, serial: Serial): { ring: CoalescedRing; offset: number; queuing: () => boolean } | undefined {
  if (process.env.SPARKLER_NO_COALESCED_PIO === '1' || kvm.checkExtension(KVM_CAP.COALESCED_PIO) <= 0) return undefined;
  // KVM_CAP_COALESCED_MMIO answers with the ring's page offset in every vCPU's mapping.
  const page = kvm.checkExtension(KVM_CAP.COALESCED_MMIO);
  const mapping = vcpu.run.bytes;
  if (page <= 0 || mapping.length < (page + 1) * PAGE_SIZE) return undefined;
  let registered = false;
  let usable = true;
  serial.onPolledTransmit((polled) => {
    if (!usable || polled === registered) return;
    try {
      vm.setCoalescedPio(COM1_PORT, 1, polled);
      registered = polled;
    } catch {
      usable = false; // every write exits, as without the capability
    }
  });
  const ring = new CoalescedRing(mapping.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE));
  return { ring, offset: page * PAGE_SIZE, queuing: () => registered };
}
