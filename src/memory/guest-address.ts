/**
 * Guest-physical addresses are branded numbers so that they cannot be mixed up with offsets
 * into a host buffer (vm-memory's GuestAddress). Guest RAM stays far below 2^53, so a plain
 * number is exact and much cheaper than a bigint on hot paths.
 */
export type GuestAddress = number & { readonly __brand: 'GuestAddress' };

export function guestAddress(value: number): GuestAddress {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${value} is not a valid guest-physical address.`);
  }
  return value as GuestAddress;
}
