/** PUT /actions: the synchronous instance actions. */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';

export const INSTANCE_ACTIONS = wire.INSTANCE_ACTIONS;
export type InstanceActionType = wire.InstanceActionInfo['action_type'];

export function parseInstanceAction(value: unknown, where = 'actions'): InstanceActionType {
  return decode(wire.InstanceActionInfo, value, where).action_type;
}
