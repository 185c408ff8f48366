import type { FastifySchemaValidationError } from 'fastify';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';

function describe(e: FastifySchemaValidationError, dataVar: string): string | undefined {
  const where = `${dataVar}${e.instancePath}`;
  if (e.keyword === 'boolean') return undefined; // "schema is false": reported by its additionalProperties error
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperties?: unknown }).additionalProperties;
    return `${where} has unknown properties: ${Array.isArray(extra) ? extra.join(', ') : String(extra)}`;
  }
  return `${where} ${e.message ?? 'is invalid'}`;
}

/**
 * "body/input must be string, or body/input must not have more than 2048 items" instead of Ajv's bare
 * "must match a schema in anyOf", and the names of unknown properties.
 */
export function formatValidationErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const anyOf = errors.filter((e) => e.keyword === 'anyOf').map((e) => (e as { schemaPath?: string }).schemaPath ?? '');
  const parts: string[] = [];
  const grouped = new Map<string, string[]>();
  for (const e of errors) {
    if (e.keyword === 'anyOf') continue;
    const path = (e as { schemaPath?: string }).schemaPath ?? '';
    const group = anyOf.find((a) => path.startsWith(`${a}/anyOf/`));
    const text = describe(e, dataVar);
    if (!text) continue;
    if (group !== undefined) grouped.set(group, [...(grouped.get(group) ?? []), text]);
    else parts.push(text);
  }
  for (const texts of grouped.values()) parts.push([...new Set(texts)].join(', or '));
  const message = [...new Set(parts)].slice(0, 5).join('; ') || `${dataVar} is invalid`;
  return new Error(message);
}

/**
 * Route options for strict validation: TypeBox checks bodies as they are (Fastify's default Ajv would
 * coerce 5 into "5" or "a" into ["a"] and so accept a malformed request), and clear messages.
 */
export const strict = {
  validatorCompiler: TypeBoxValidatorCompiler,
  schemaErrorFormatter: formatValidationErrors,
} as const;
