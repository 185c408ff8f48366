import type { FastifySchemaValidationError } from 'fastify';

type ValidationIssue = FastifySchemaValidationError & { schemaPath?: string };

function describe(e: ValidationIssue, dataVar: string): string | undefined {
  const where = `${dataVar}${e.instancePath}`;
  // "boolean schema is false" comes with an additionalProperties error that names the property.
  if (e.keyword === 'boolean' || e.keyword === 'false schema') return undefined;
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty?: unknown; additionalProperties?: unknown }).additionalProperty ?? (e.params as { additionalProperties?: unknown }).additionalProperties;
    return `${where} has unknown properties: ${Array.isArray(extra) ? extra.join(', ') : String(extra)}`;
  }
  return `${where} ${e.message ?? 'is invalid'}`;
}

/**
 * One readable message for every route of every service: "body/input must be string, or body/input must
 * NOT have more than 2048 items" instead of a bare "must match a schema in anyOf", and the names of
 * unknown properties.
 */
export function formatValidationErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const issues = errors as ValidationIssue[];
  const anyOf = issues.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath ?? '');
  const parts: string[] = [];
  const grouped = new Map<string, string[]>();
  for (const e of issues) {
    if (e.keyword === 'anyOf') continue;
    const path = e.schemaPath ?? '';
    const group = anyOf.find((a) => path.startsWith(`${a}/anyOf/`) || path.startsWith(`${a.replace(/\/anyOf$/, '')}/anyOf/`));
    const text = describe(e, dataVar);
    if (!text) continue;
    if (group !== undefined) grouped.set(group, [...(grouped.get(group) ?? []), text]);
    else parts.push(text);
  }
  for (const texts of grouped.values()) parts.push([...new Set(texts)].join(', or '));
  const message = [...new Set(parts)].slice(0, 5).join('; ') || `${dataVar} is invalid`;
  return new Error(message);
}
