/** PUT /metrics, `metrics` in the config file: where the JSON metric lines go. */
import { ConfigError, parseObject, requiredString } from './validate';

export interface MetricsConfig {
  metricsPath: string;
}

export function parseMetricsConfig(value: unknown, where = 'metrics'): MetricsConfig {
  const obj = parseObject(value, ['metrics_path'], where);
  const metricsPath = requiredString(obj, 'metrics_path', where);
  if (metricsPath.length === 0) throw new ConfigError(`${where}: field \`metrics_path\` cannot be empty.`);
  return { metricsPath };
}

export function metricsConfigToJson(c: MetricsConfig): Record<string, unknown> {
  return { metrics_path: c.metricsPath };
}
