/**
 * The API's wire shapes, for the API server and for clients (the SDK): one schema value per
 * request and response body with its derived TypeScript type, named as Firecracker's OpenAPI
 * definitions. Nothing here imports the VMM.
 */
export * from './definitions';
export type { Infer, Schema, ObjectSchema } from './schema';
export { schemaRef, collectDefinitions } from './json-schema';
export type { JsonSchema } from './json-schema';
