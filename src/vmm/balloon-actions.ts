/**
 * The balloon's API actions (GET/PATCH /balloon, /balloon/statistics, /balloon/hinting/*), with
 * Firecracker's rules and fault phrases ("Balloon config error: ...", "Balloon update error:
 * ..."). Before boot only the configuration exists; after boot the running device answers.
 */
import type { VmmAction, VmmResponse } from '../api/actions';
import { ApiError } from '../api/errors';
import { balloonToJson } from '../config/balloon';
import type { VmResources } from '../config/resources';
import type { VirtioBalloon } from '../devices/virtio/balloon/device';
import { BALLOON_ID } from '../devices/virtio/balloon/spec';
import { SparklerError } from '../errors';
import type { Vmm } from './vmm';

export type BalloonAction = Extract<VmmAction, { kind:
  'GetBalloonConfig' | 'GetBalloonStats' | 'UpdateBalloon' | 'UpdateBalloonStatistics' |
  'StartFreePageHinting' | 'StopFreePageHinting' | 'GetFreePageHintingStatus' }>;

export const NO_BALLOON = 'No balloon device found.';

/** The running VM's balloon device, if it has one. */
export function findBalloon(vmm: Vmm | undefined): VirtioBalloon | undefined {
  const attached = vmm?.devices.find?.('balloon', BALLOON_ID);
  return attached?.created.device as VirtioBalloon | undefined;
}

const ok = (body: unknown): VmmResponse => ({ status: 200, body: body as never });

/** Applies one balloon action. `balloon` is undefined before boot (the lifecycle rules ran already). */
export function handleBalloonAction(action: BalloonAction, resources: VmResources, booted: boolean, balloon: VirtioBalloon | undefined): VmmResponse {
  if (!booted) {
    // Only GET /balloon reaches here before boot; the rest are post-boot actions.
    const config = resources.config.balloon;
    if (config === undefined) throw new ApiError(400, `Balloon config error: ${NO_BALLOON}`, undefined, 'ENOBALLOON');
    return ok(balloonToJson(config));
  }
  if (balloon === undefined) {
    const prefix = action.kind === 'GetBalloonConfig' ? 'Balloon config error' : 'Balloon update error';
    throw new ApiError(400, `${prefix}: ${NO_BALLOON}`, undefined, 'ENOBALLOON');
  }
  try {
    switch (action.kind) {
      case 'GetBalloonConfig': return ok(balloonToJson(balloon.config));
      case 'GetBalloonStats': return ok(balloon.statistics());
      case 'UpdateBalloon': {
        const memMib = resources.config.machineConfig.memSizeMib;
        if (action.amountMib > memMib) {
          throw new SparklerError('ETOOMANYPAGES', `Amount of pages requested is larger than the guest memory (${action.amountMib} MiB > ${memMib} MiB).`);
        }
        balloon.setTarget(action.amountMib);
        resources.recordBalloonUpdate({ amountMib: action.amountMib });
        return { status: 204 };
      }
      case 'UpdateBalloonStatistics':
        balloon.setStatsInterval(action.statsPollingIntervalS);
        resources.recordBalloonUpdate({ statsPollingIntervalS: action.statsPollingIntervalS });
        return { status: 204 };
      case 'StartFreePageHinting': balloon.startHinting(action.acknowledgeOnStop); return { status: 204 };
      case 'StopFreePageHinting': balloon.stopHinting(); return { status: 204 };
      case 'GetFreePageHintingStatus': return ok(balloon.hintingStatus());
    }
  } catch (err) {
    if (err instanceof SparklerError && !(err instanceof ApiError)) {
      throw new ApiError(400, `Balloon update error: ${err.message}`, err, err.code);
    }
    throw err;
  }
}
