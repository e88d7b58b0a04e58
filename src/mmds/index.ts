/**
 * MMDS, the microVM metadata service: the data store the API edits, the session tokens, the
 * guest-facing HTTP handler and the network stack a network device detours MMDS frames to.
 * No knowledge of virtio, the API server or the VMM.
 */
export { MmdsStore, type LookupResult, type OutputFormat, UNSUPPORTED_VALUE_TYPE_MESSAGE, formatImds } from './data-store';
export { MmdsError, MmdsLimitExceededError, MmdsNotInitializedError, MmdsTokenTtlError } from './errors';
export { MmdsGuestHandler, type MmdsGuestHandlerDeps, MESSAGES as MMDS_GUEST_MESSAGES, TOKEN_PATH } from './guest-handler';
export { type HttpRequest, type HttpResponse, parseRequest, serializeResponse } from './http';
export { type JsonValue, mergePatch, toCompactJson, jsonByteLength } from './json';
export { MmdsMetrics } from './metrics';
export {
  DEFAULT_MMDS_IPV4_ADDRESS, DEFAULT_MMDS_OPTIONS, DEFAULT_MMDS_SIZE_LIMIT, MMDS_MAC, type MmdsOptions, type MmdsVersion,
  isLinkLocalIpv4, parseIpv4,
} from './options';
export { MAX_TOKEN_TTL_SECONDS, MIN_TOKEN_TTL_SECONDS, TokenAuthority, type TokenAuthorityOptions } from './token-authority';
export { DEFAULT_MAX_CONNECTIONS, type DetourOptions, MMDS_TCP_PORT, MmdsNetworkStack, type MmdsNetworkStackOptions } from './net/network-stack';
export { createMmds, type Mmds } from './mmds';
