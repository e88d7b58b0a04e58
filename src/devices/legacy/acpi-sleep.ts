/**
 * The hardware-reduced ACPI sleep control and status registers (ACPI 6.x, 4.8.3.7), at the
 * ports the FADT names (src/arch/x86_64/acpi). A write of SLP_EN with SLP_TYP 5 (S5, soft off)
 * is the guest's `poweroff`: it ends the VM cleanly. Both registers read as 0: Linux polls the
 * status register for the wake bit after writing, and an unclaimed port would read 0xff.
 */
import { isS5Request } from '../../arch/x86_64/acpi';
import { BusDevice } from '../bus';

export class AcpiSleepControl implements BusDevice {
  constructor(private readonly onPowerOff: () => void) {}

  read(_offset: number, data: Buffer): void {
    data.fill(0);
  }

  write(offset: number, data: Buffer): void {
    if (offset === 0 && isS5Request(data[0])) this.onPowerOff();
  }
}
