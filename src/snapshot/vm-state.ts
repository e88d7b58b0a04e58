/** The VM-wide state KVM holds: the in-kernel PIT, the two PICs and the IOAPIC, and kvmclock. */
import { ClockData, IRQCHIP, KVM_CLOCK, VmFd } from '../kvm/vm';

export interface VmState {
  pit2: Buffer;
  picMaster: Buffer;
  picSlave: Buffer;
  ioapic: Buffer;
  clock: ClockData;
}

export function saveVmState(vm: VmFd): VmState {
  return {
    pit2: vm.getPit2(),
    picMaster: vm.getIrqchip(IRQCHIP.PIC_MASTER),
    picSlave: vm.getIrqchip(IRQCHIP.PIC_SLAVE),
    ioapic: vm.getIrqchip(IRQCHIP.IOAPIC),
    clock: vm.getClock(),
  };
}

/**
 * Restores into a VM made by createVmCore (irqchip and PIT exist). The clock goes back to where
 * it stopped, so the guest sees no time pass while it was saved; with `clockRealtime` (and a
 * host that reported the wall time with it) KVM advances it by the wall time since.
 */
export function restoreVmState(vm: VmFd, state: VmState, opts: { clockRealtime: boolean }): void {
  vm.setPit2(state.pit2);
  const realtime = opts.clockRealtime && (state.clock.flags & KVM_CLOCK.REALTIME) !== 0;
  vm.setClock({ clock: state.clock.clock, flags: realtime ? KVM_CLOCK.REALTIME : 0, realtime: realtime ? state.clock.realtime : 0n });
  vm.setIrqchip(state.picMaster);
  vm.setIrqchip(state.picSlave);
  vm.setIrqchip(state.ioapic);
}
