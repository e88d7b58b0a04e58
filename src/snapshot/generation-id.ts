/**
 * VMGenID on restore: every restored VM (each clone of one snapshot) gets a new random
 * generation ID, and the guest is told through the GED interrupt, so Linux's vmgenid driver
 * reseeds the RNG ("crng reseeded due to virtual machine fork") and clones stop sharing its state.
 */
import { newGenerationId, writeGenerationId } from '../arch/x86_64/acpi/vmgenid';
import type { GuestMemory } from '../memory/guest-memory';

/** Where the saved VM's generation ID lives and which GSI announces a new one (from its DSDT). */
export interface VmGenIdLocation {
  address: number;
  gsi: number;
}

/** VMs restored from a snapshot without a generation ID: their guest has no VGEN device. */
export const lacksVmGenId = new WeakSet<object>();

export interface IrqLineRaiser {
  irqLine(gsi: number, level: boolean): void;
}

/**
 * Writes a fresh ID and raises an edge on the GED's GSI. Call once the vCPUs' state is restored
 * (the interrupt waits in the I/O APIC and LAPIC until they run; raised earlier it is lost).
 */
export function announceNewGeneration(vm: IrqLineRaiser, memory: GuestMemory, where: VmGenIdLocation, id: Uint8Array = newGenerationId()): void {
  writeGenerationId(memory, id, where.address);
  vm.irqLine(where.gsi, true);
  vm.irqLine(where.gsi, false);
}
