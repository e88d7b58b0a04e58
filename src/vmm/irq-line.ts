import { InterruptLine } from '../devices/bus';
import { check } from '../kvm/check';
import { VmFd } from '../kvm/vm';
import { native, NativeShim } from '../native';

/** A guest interrupt raised by writing an eventfd registered as a KVM irqfd (no exit, no ioctl). */
export class IrqfdLine implements InterruptLine {
  private closed = false;

  private constructor(readonly eventFd: number, readonly gsi: number, private readonly shim: NativeShim) {}

  static register(vm: VmFd, gsi: number, shim: NativeShim = native()): IrqfdLine {
    const fd = check(shim.eventfd(0, 0), `eventfd for IRQ ${gsi}`);
    try {
      vm.registerIrqfd(fd, gsi);
    } catch (err) {
      shim.close(fd);
      throw err;
    }
    return new IrqfdLine(fd, gsi, shim);
  }

  trigger(): void {
    if (!this.closed) this.shim.eventfdWrite(this.eventFd, 1);
  }

  /** Closes the eventfd (KVM drops the irqfd with the VM). Idempotent; later triggers do nothing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.shim.close(this.eventFd);
  }
}
