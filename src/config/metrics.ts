/** PUT /metrics, `metrics` in the config file: where the JSON metric lines go. */
import * as wire from '../api/wire/definitions';
import { decode } from './decode';
import { ConfigError } from './validate';

export interface MetricsConfig {
  metricsPath: string;
}

export function parseMetricsConfig(value: unknown, where = 'metrics'): MetricsConfig {
  const metricsPath = decode(wire.Metrics, value, where).metrics_path;
  if (metricsPath.length === 0) throw new ConfigError(`${where}: field \`metrics_path\` cannot be empty.`);
  return { metricsPath };
}

export function metricsConfigToJson(c: MetricsConfig): wire.Metrics {
  return { metrics_path: c.metricsPath };
}
