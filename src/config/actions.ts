/** PUT /actions: the synchronous instance actions. */
import { parseObject, requiredEnum } from './validate';

export const INSTANCE_ACTIONS = ['FlushMetrics', 'InstanceStart', 'SendCtrlAltDel'] as const;
export type InstanceActionType = (typeof INSTANCE_ACTIONS)[number];

export function parseInstanceAction(value: unknown, where = 'actions'): InstanceActionType {
  const obj = parseObject(value, ['action_type'], where);
  return requiredEnum(obj, 'action_type', where, INSTANCE_ACTIONS);
}
