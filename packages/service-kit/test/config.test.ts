import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { BaseConfig, ConfigError, loadConfig } from '../src/index.js';

const Schema = Type.Object({
  ...BaseConfig.properties,
  PORT: Type.Integer({ default: 8002, minimum: 0, maximum: 65535 }),
  REDIS_DB_RETRIEVAL_PROXY: Type.Integer({ default: 1, minimum: 0, maximum: 15 }),
  CACHE_TTL_SEARCH_RESULTS: Type.Optional(Type.Integer({ minimum: 1 })),
  MULTIMODAL_WORKER_URL: Type.String({ default: 'http://127.0.0.1:8001' }),
});

describe('loadConfig', () => {
  it('applies defaults when nothing is set', () => {
    const config = loadConfig(Schema, { env: {} });
    expect(config).toMatchObject({
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: 8002,
      LOG_LEVEL: 'info',
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: 6379,
      CACHE_COMMAND_TIMEOUT_MS: 250,
      CACHE_TTL_JITTER: 0.05,
      PEER_TIMEOUT_MS: 5000,
      PEER_RETRIES: 2,
      BODY_LIMIT_BYTES: 1_048_576,
      STATE_REQUIRE_DURABLE: false,
      REDIS_DB_RETRIEVAL_PROXY: 1,
      MULTIMODAL_WORKER_URL: 'http://127.0.0.1:8001',
    });
    expect(config.REDIS_URL).toBeUndefined();
  });

  it('takes values from env and coerces numbers and booleans', () => {
    const config = loadConfig(Schema, {
      env: { PORT: '9000', NODE_ENV: 'production', STATE_REQUIRE_DURABLE: 'true', CACHE_TTL_JITTER: '0.1', REDIS_URL: 'redis://:pw@redis:6379' },
    });
    expect(config.PORT).toBe(9000);
    expect(config.NODE_ENV).toBe('production');
    expect(config.STATE_REQUIRE_DURABLE).toBe(true);
    expect(config.CACHE_TTL_JITTER).toBe(0.1);
    expect(config.REDIS_URL).toBe('redis://:pw@redis:6379');
  });

  it('treats an empty value as unset, as compose files write VAR= for none', () => {
    const config = loadConfig(Schema, { env: { REDIS_PASSWORD: '', PORT: '' } });
    expect(config.REDIS_PASSWORD).toBeUndefined();
    expect(config.PORT).toBe(8002);
  });

  it('names every bad variable and why', () => {
    let caught: unknown;
    try {
      loadConfig(Schema, { env: { PORT: 'eighty', REDIS_DB_RETRIEVAL_PROXY: '16', NODE_ENV: 'prod' } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const err = caught as ConfigError;
    expect(err.message).toMatch(/PORT: must be a whole number \(got "eighty"\)/);
    expect(err.message).toMatch(/REDIS_DB_RETRIEVAL_PROXY: must be <= 15/);
    expect(err.message).toMatch(/NODE_ENV: must be one of development, production, test/);
    expect(err.issues.map((i) => i.variable).sort()).toEqual(['NODE_ENV', 'PORT', 'REDIS_DB_RETRIEVAL_PROXY']);
  });

  it.each([
    ['CACHE_TTL_SEARCH_RESULTS', '0x10'],
    ['CACHE_TTL_SEARCH_RESULTS', '1e3'],
    ['PORT', '1e4'],
    ['PORT', '0b11'],
    ['REDIS_DB_RETRIEVAL_PROXY', '1.0'],
    ['CACHE_TTL_SEARCH_RESULTS', 'Infinity'],
    ['CACHE_TTL_JITTER', '5e-2'],
    ['CACHE_TTL_JITTER', '0x0'],
  ])('refuses %s=%s: numbers are written in decimal digits, as they are read before any coercion', (variable, value) => {
    let caught: unknown;
    try {
      loadConfig(Schema, { env: { [variable]: value } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues.map((i) => i.variable)).toEqual([variable]);
    expect((caught as ConfigError).message).toContain(`${variable}: must be`);
    expect((caught as ConfigError).message).toContain(JSON.stringify(value));
  });

  it('checks every whole-number variable of the shared schema the same way', () => {
    const integers = Object.entries(BaseConfig.properties)
      .filter(([, schema]) => (schema as { type?: unknown }).type === 'integer')
      .map(([name]) => name);
    expect(integers).toContain('PORT');
    expect(integers).toContain('CACHE_COMMAND_TIMEOUT_MS');
    for (const variable of integers) {
      expect(() => loadConfig(BaseConfig, { env: { [variable]: '1e3' } }), variable).toThrowError(new RegExp(`${variable}: must be a whole number`));
      expect(() => loadConfig(BaseConfig, { env: { [variable]: '0x3e8' } }), variable).toThrowError(ConfigError);
    }
  });

  it('still takes plain digits, with surrounding blanks, and decimals for number variables', () => {
    const config = loadConfig(Schema, { env: { PORT: ' 8080 ', CACHE_TTL_SEARCH_RESULTS: '16', CACHE_TTL_JITTER: '0.1', REDIS_DB_RETRIEVAL_PROXY: '0' } });
    expect(config).toMatchObject({ PORT: 8080, CACHE_TTL_SEARCH_RESULTS: 16, CACHE_TTL_JITTER: 0.1, REDIS_DB_RETRIEVAL_PROXY: 0 });
  });

  it('never prints a secret in the error', () => {
    const S = Type.Object({ ...BaseConfig.properties, API_TOKEN: Type.String({ minLength: 10 }) });
    expect(() => loadConfig(S, { env: { API_TOKEN: 'short', REDIS_URL: 'http://u:hunter2@host' } })).toThrowError(/API_TOKEN: must NOT have fewer than 10 characters \(value hidden\)/);
    try {
      loadConfig(S, { env: { API_TOKEN: 'short', REDIS_URL: 'http://u:hunter2@host' } });
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
      expect((err as Error).message).toContain('REDIS_URL: must be a redis:// or rediss:// URL');
    }
  });

  it('reads a .env file, and real env wins over it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kit-env-'));
    const file = join(dir, '.env');
    writeFileSync(file, 'PORT=7000\nLOG_LEVEL=debug\n# comment\nMULTIMODAL_WORKER_URL="http://worker:8001"\n');
    const config = loadConfig(Schema, { env: { PORT: '7100' }, dotenv: file });
    expect(config.PORT).toBe(7100);
    expect(config.LOG_LEVEL).toBe('debug');
    expect(config.MULTIMODAL_WORKER_URL).toBe('http://worker:8001');
  });

  it('reads .env from the working directory when no env is passed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kit-cwd-'));
    writeFileSync(join(dir, '.env'), 'REDIS_DB_RETRIEVAL_PROXY=7\n');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(loadConfig(Schema).REDIS_DB_RETRIEVAL_PROXY).toBe(7);
      // an explicit env means "exactly this", so a developer's .env cannot leak into tests
      expect(loadConfig(Schema, { env: {} }).REDIS_DB_RETRIEVAL_PROXY).toBe(1);
    } finally {
      process.chdir(cwd);
    }
  });
});
