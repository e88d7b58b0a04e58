import { InterruptLine } from '../devices/bus';
import { check } from '../kvm/check';
import { VmFd } from '../kvm/vm';
import { native } from '../native';

/** A guest interrupt raised by writing an eventfd registered as a KVM irqfd (no exit, no ioctl). */
export class IrqfdLine implements InterruptLine {
  private constructor(readonly eventFd: number, readonly gsi: number) {}

  static register(vm: VmFd, gsi: number): IrqfdLine {
    const fd = check(native().eventfd(0, 0), `eventfd for IRQ ${gsi}`);
    vm.registerIrqfd(fd, gsi);
    return new IrqfdLine(fd, gsi);
  }

  trigger(): void {
    native().eventfdWrite(this.eventFd, 1);
  }
}
