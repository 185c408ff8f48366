export { allows, tenantOf, DEFAULT_TENANT, SCOPES, TENANT_PATTERN, TENANT_RE, type Principal, type Scope } from './principal.js';
