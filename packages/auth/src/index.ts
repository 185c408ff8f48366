export { allows, tenantOf, DEFAULT_TENANT, SCOPES, TENANT_PATTERN, TENANT_RE, type Principal, type Scope } from './principal.js';
export { AuthStore, AuthError, USERNAME_RE, MIN_PASSWORD_LENGTH, type User, type ApiKeyRecord, type SessionRecord, type Credential, type Revocation } from './store.js';
export { Authenticator, type AuthenticatorOptions } from './authenticator.js';
export { ServiceTokens, SERVICE_TOKEN_TTL_SECONDS } from './service-token.js';
export { AuditLog, type AuditEntry } from './audit.js';
export { hashPassword, verifyPassword, digestOf, sameSecret, KEY_PREFIX, SESSION_PREFIX, SCRYPT } from './secrets.js';
export { createAuth, type AuthSettings, type AuthParts } from './create.js';
export { authPlugin, Unauthorized, Forbidden, RateLimited, AuthUnavailable, type AuthApi, type AuthPluginOptions, type AuthRouteConfig } from './plugin.js';
export type { PrincipalLimits, LimitVerdict } from './limits-port.js';
