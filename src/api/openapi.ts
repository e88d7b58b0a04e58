/**
 * Sparkler's own OpenAPI (2.0) document, generated from the route table and the wire schemas, so
 * it always describes what the server parses and answers. `sparkler openapi` prints it; the
 * committed copy is docs/openapi.json (a test fails when the two differ).
 */
import { VERSION } from '../cli/version';
import type { HttpMethod } from '../metrics/api-metrics';
import { ROUTES } from './routes';
import * as wire from './wire/definitions';
import { collectDefinitions, JsonSchema, schemaRef } from './wire/json-schema';

/** Firecracker's API version whose paths, bodies and fields this one follows. */
export const FIRECRACKER_API_VERSION = '1.16.1';

function operationId(method: HttpMethod, path: string): string {
  const words = path.split(/[/{}_-]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1));
  return method.toLowerCase() + (words.length > 0 ? words.join('') : 'Instance');
}

const error = (description: string) => ({ description, schema: schemaRef(wire.ErrorBody) });

export function buildOpenApi(): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const definitions: Record<string, JsonSchema> = {};
  collectDefinitions(wire.ErrorBody, definitions);
  for (const route of ROUTES) {
    const ops: Record<string, JsonSchema> = {};
    for (const method of ['GET', 'PUT', 'PATCH'] as const) {
      const h = route[method];
      if (!h) continue;
      const parameters: JsonSchema[] = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, type: 'string' }));
      if (h.request) {
        collectDefinitions(h.request, definitions);
        parameters.push({ name: 'body', in: 'body', required: h.body === true, schema: schemaRef(h.request) });
      }
      const responses: JsonSchema = {};
      if (h.response) {
        collectDefinitions(h.response, definitions);
        responses['200'] = { description: 'The requested resource.', schema: schemaRef(h.response) };
      } else {
        responses['204'] = { description: 'Done.' };
      }
      responses['400'] = error('Refused: the fault_message says why; the X-Sparkler-Error-Code header carries a stable code.');
      responses.default = error('Internal error.');
      const op: JsonSchema = { summary: h.summary, operationId: operationId(method, route.path) };
      if (parameters.length > 0) op.parameters = parameters;
      op.responses = responses;
      ops[method.toLowerCase()] = op;
    }
    paths[route.path] = ops;
  }
  const sorted = Object.fromEntries(Object.keys(definitions).sort().map((k) => [k, definitions[k]]));
  return {
    swagger: '2.0',
    info: {
      title: 'Sparkler API',
      description: `The REST API of the Sparkler microVM monitor, on a Unix socket; it follows Firecracker's v${FIRECRACKER_API_VERSION} API (paths, bodies, fields).`,
      version: VERSION,
    },
    host: 'localhost',
    basePath: '/',
    schemes: ['http'],
    consumes: ['application/json'],
    produces: ['application/json'],
    paths,
    definitions: sorted,
  };
}

/** The document as `sparkler openapi` prints it and docs/openapi.json holds it. */
export function openApiText(): string {
  return `${JSON.stringify(buildOpenApi(), null, 2)}\n`;
}

/** `sparkler openapi`: prints the document (JSON) on stdout. */
export async function run(argv: string[]): Promise<number> {
  if (argv.length > 0) {
    process.stderr.write('usage: sparkler openapi   (prints the OpenAPI 2.0 document of the API as JSON)\n');
    return argv[0] === '--help' || argv[0] === '-h' ? 0 : 153;
  }
  process.stdout.write(openApiText());
  return 0;
}
