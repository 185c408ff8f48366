import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';

interface Issue {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

/**
 * Validation for this service's routes with TypeBox: defaults are applied everywhere, query strings and
 * path params are converted from text, but a JSON body is never coerced — `{"name": 42}` is a 400, not
 * the name "42" (Fastify's default Ajv setup coerces body types). A missing body counts as `{}` so the
 * answer names the missing fields.
 */
export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  return (input: unknown) => {
    let value = input === null || input === undefined ? (httpPart === 'body' ? {} : input) : Value.Clone(input);
    value = tryApply(() => Value.Default(schema, value), value);
    if (httpPart !== 'body') value = tryApply(() => Value.Convert(schema, value), value);
    if (check.Check(value)) return { value };
    return { error: readable([...check.Errors(value)] as Issue[]) as never };
  };
};

/**
 * typebox 1.4 Value.Default throws on a record with `additionalProperties: false` when a key does not
 * match; the check that follows reports that key, so keep the value as it was.
 */
function tryApply(fn: () => unknown, fallback: unknown): unknown {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** Ajv-shaped issues with the noise removed: the extra property is named instead of "schema is false". */
function readable(issues: Issue[]): Issue[] {
  const out: Issue[] = [];
  for (const issue of issues) {
    if (issue.keyword === 'boolean' && issue.schemaPath.endsWith('additionalProperties')) continue;
    if (issue.keyword === 'additionalProperties') {
      const names = (issue.params.additionalProperties as string[] | undefined) ?? [];
      out.push({ ...issue, message: `must not have additional properties (${names.map((n) => `'${n}'`).join(', ')})` });
      continue;
    }
    out.push(issue);
  }
  return out.slice(0, 5);
}
