import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVICES, envExampleVars, interpolatedVars, readRepoFile, repoFileExists, repoPath, schemaVars } from '../src/index.js';

const exampleText = readRepoFile('.env.example');
const example = envExampleVars(exampleText);
const exampleLines = exampleText.split('\n');

/** Variables the services read: their config.ts schemas plus the BaseConfig and JobsConfig services spread. */
function serviceVars(): Map<string, string> {
  const found = new Map<string, string>();
  const sources = ['packages/service-kit/src/config.ts', 'packages/jobs/src/config.ts', ...SERVICES.map((s) => `services/${s.name}/src/config.ts`)];
  for (const file of sources) {
    if (!repoFileExists(file)) continue;
    for (const name of schemaVars(readRepoFile(file))) if (!found.has(name)) found.set(name, file);
  }
  return found;
}

/** Variables the tools read: npm start's modules (process.env.X, portVar: 'X') and the scripts' ${X:-...}. */
function toolVars(): Map<string, string> {
  const found = new Map<string, string>();
  const stackFiles = ['scripts/stack.mjs', ...readdirSync(repoPath('scripts', 'stack')).map((f) => `scripts/stack/${f}`)];
  for (const file of stackFiles) {
    for (const m of readRepoFile(file).matchAll(/process\.env\.([A-Z][A-Z0-9_]+)|portVar: '([A-Z][A-Z0-9_]+)'/g)) {
      const name = (m[1] ?? m[2]) as string;
      if (name !== 'NO_COLOR') found.set(name, file);
    }
  }
  for (const file of readdirSync(repoPath('infra', 'scripts'))) {
    const text = readRepoFile('infra', 'scripts', file);
    for (const m of text.matchAll(/\$\{([A-Z][A-Z0-9_]+):[-?]/g)) found.set(m[1] as string, `infra/scripts/${file}`);
  }
  return found;
}

describe('.env.example', () => {
  it('lists every variable docker-compose.yml interpolates', () => {
    const missing = [...interpolatedVars(readRepoFile('docker-compose.yml'))].filter((v) => !example.has(v));
    expect(missing).toEqual([]);
  });

  it('lists every variable a service reads in its config schema', () => {
    const vars = serviceVars();
    expect(vars.size).toBeGreaterThan(20);
    const missing = [...vars].filter(([v]) => !example.has(v)).map(([v, file]) => `${v} (${file})`);
    expect(missing).toEqual([]);
  });

  it('lists the variables npm start and the infra scripts read', () => {
    const missing = [...toolVars()].filter(([v]) => !example.has(v)).map(([v, file]) => `${v} (${file})`);
    expect(missing).toEqual([]);
  });

  it('lists the per-category TTLs and DB indexes with their documented defaults', () => {
    const defaults: Record<string, string> = {
      REDIS_DB_MULTIMODAL_WORKER: '0',
      REDIS_DB_RETRIEVAL_PROXY: '1',
      REDIS_DB_AI_AGENTS: '2',
      CACHE_TTL_EMBEDDINGS: '86400',
      CACHE_TTL_MODEL_METADATA: '86400',
      CACHE_TTL_FILES: '86400',
      CACHE_TTL_SEARCH_RESULTS: '3600',
      CACHE_TTL_CONTEXT_BUNDLES: '1800',
      CACHE_TTL_AGENT_MEMORY: '2592000',
    };
    for (const [name, value] of Object.entries(defaults)) expect(example.get(name)?.value, name).toBe(value);
  });

  it('holds no secret: passwords, tokens and API keys are empty', () => {
    const secrets = [...example].filter(([name]) => /PASSWORD|TOKEN|SECRET|API_KEY/.test(name) && !name.endsWith('_FILE'));
    expect(secrets.map(([n]) => n)).toEqual(expect.arrayContaining(['REDIS_PASSWORD', 'CACHE_ADMIN_TOKEN']));
    for (const [name, { value }] of secrets) expect(value, name).toBe('');
  });

  it('explains every variable with a comment above it (or above its group)', () => {
    const uncommented: string[] = [];
    for (const [name, { line }] of example) {
      let i = line - 1;
      while (i >= 0 && /^#?\s*[A-Z][A-Z0-9_]*=/.test((exampleLines[i] ?? '').trim())) i -= 1;
      if (i < 0 || !(exampleLines[i] ?? '').trim().startsWith('#')) uncommented.push(name);
    }
    expect(uncommented).toEqual([]);
  });
});
