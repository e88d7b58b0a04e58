/**
 * Feature bits as one 64-bit bigint. The transport exposes them to the driver 32 bits at a time
 * through DeviceFeatures/DriverFeatures and their Sel registers (spec 2.2, 4.2.2).
 */
import { FeatureBit } from './constants';

export function featureBit(bit: number): bigint {
  if (!Number.isInteger(bit) || bit < 0 || bit > 63) throw new RangeError(`Feature bit ${bit} is not between 0 and 63.`);
  return 1n << BigInt(bit);
}

export function hasFeature(features: bigint, bit: number): boolean {
  return (features & featureBit(bit)) !== 0n;
}

/** Features the transport and queue implement for every device: a device adds its own bits to these. */
export const TRANSPORT_FEATURES =
  featureBit(FeatureBit.VERSION_1) | featureBit(FeatureBit.RING_EVENT_IDX) | featureBit(FeatureBit.RING_INDIRECT_DESC);

/** Bits of the transport range (24..41, spec 6) a device must not offer itself: only the transport knows whether it implements them. */
const TRANSPORT_RANGE = ((1n << 42n) - 1n) & ~((1n << 24n) - 1n);

/** The 32-bit word `sel` of `features` (0 = bits 0..31, 1 = bits 32..63, anything else reads as 0). */
export function featuresWord(features: bigint, sel: number): number {
  if (sel !== 0 && sel !== 1) return 0;
  return Number((features >> BigInt(32 * sel)) & 0xffff_ffffn);
}

/** `features` with word `sel` replaced by `value`; other selectors have no bits to write (spec 4.2.2). */
export function withFeaturesWord(features: bigint, sel: number, value: number): bigint {
  if (sel !== 0 && sel !== 1) return features;
  const shift = BigInt(32 * sel);
  return (features & ~(0xffff_ffffn << shift)) | (BigInt(value >>> 0) << shift);
}

/** What the transport offers for a device that asks for `deviceFeatures`. */
export function offeredFeatures(deviceFeatures: bigint): bigint {
  const stray = deviceFeatures & TRANSPORT_RANGE & ~TRANSPORT_FEATURES;
  if (stray !== 0n) {
    throw new RangeError(`The device offers transport feature bits 0x${stray.toString(16)} that this transport does not implement.`);
  }
  return deviceFeatures | TRANSPORT_FEATURES;
}

/**
 * Why the driver's feature set cannot be accepted (FEATURES_OK refused, spec 3.1.1 step 5-6),
 * or undefined when it can. VERSION_1 is required: without it the driver expects the legacy
 * interface, which this transport does not provide (spec 6.1).
 */
export function featureRefusal(offered: bigint, acked: bigint): string | undefined {
  const unoffered = acked & ~offered;
  if (unoffered !== 0n) return `the driver accepted feature bits 0x${unoffered.toString(16)} that were not offered`;
  if (!hasFeature(acked, FeatureBit.VERSION_1)) return 'the driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported)';
  return undefined;
}
