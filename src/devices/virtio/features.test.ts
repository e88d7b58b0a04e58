import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeatureBit } from './constants';
import {
  featureBit, featureRefusal, featuresWord, hasFeature, offeredFeatures, TRANSPORT_FEATURES, withFeaturesWord,
} from './features';
import {
  mmioSlotAddress, mmioSlotGsi, queueNotifyAddress, VIRTIO_MMIO_MAX_SLOTS, virtioMmioCmdlineFragment,
} from './mmio-slots';

test('feature words split a 64-bit set at bit 32', () => {
  const f = featureBit(FeatureBit.VERSION_1) | featureBit(FeatureBit.RING_EVENT_IDX) | featureBit(0);
  assert.equal(featuresWord(f, 0), 0x2000_0001);
  assert.equal(featuresWord(f, 1), 0x1);
  assert.equal(featuresWord(f, 2), 0);
  assert.equal(withFeaturesWord(0n, 1, 0xffff_ffff), 0xffff_ffffn << 32n);
  assert.equal(withFeaturesWord(f, 0, 0), featureBit(FeatureBit.VERSION_1));
  assert.equal(withFeaturesWord(f, 5, 0xffff_ffff), f, 'no bits beyond 63');
  assert.ok(hasFeature(TRANSPORT_FEATURES, FeatureBit.RING_INDIRECT_DESC));
  assert.throws(() => featureBit(64), RangeError);
});

test('the transport offers VERSION_1, EVENT_IDX and INDIRECT_DESC and nothing of the transport range it lacks', () => {
  assert.equal(offeredFeatures(featureBit(5)), featureBit(5) | TRANSPORT_FEATURES);
  assert.throws(() => offeredFeatures(featureBit(FeatureBit.ACCESS_PLATFORM)), /does not implement/);
});

test('FEATURES_OK refusals', () => {
  const offered = offeredFeatures(featureBit(1));
  assert.equal(featureRefusal(offered, offered), undefined);
  assert.equal(featureRefusal(offered, featureBit(FeatureBit.VERSION_1)), undefined, 'any subset with VERSION_1');
  assert.match(featureRefusal(offered, featureBit(1)) ?? '', /VERSION_1/);
  assert.match(featureRefusal(offered, offered | featureBit(2)) ?? '', /0x4 that were not offered/);
});

test('slots: addresses, GSIs, the QueueNotify address and the kernel command line', () => {
  assert.equal(mmioSlotAddress(0), 0xc000_1000);
  assert.equal(mmioSlotAddress(2), 0xc000_3000);
  assert.equal(mmioSlotGsi(0), 5);
  assert.equal(mmioSlotGsi(VIRTIO_MMIO_MAX_SLOTS - 1), 23);
  assert.equal(queueNotifyAddress(1), 0xc000_2050);
  assert.equal(virtioMmioCmdlineFragment(0), 'virtio_mmio.device=4K@0xc0001000:5');
  assert.equal(virtioMmioCmdlineFragment(3), 'virtio_mmio.device=4K@0xc0004000:8');
  assert.throws(() => mmioSlotAddress(VIRTIO_MMIO_MAX_SLOTS), /does not exist/);
  assert.throws(() => mmioSlotGsi(-1), RangeError);
});
