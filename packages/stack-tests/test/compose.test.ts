import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  SERVICES,
  composeClis,
  environmentOf,
  loadCompose,
  readRepoFile,
  repoPath,
  run,
  type ComposeService,
} from '../src/index.js';

const compose = loadCompose();
const text = readRepoFile('docker-compose.yml');
const observability = parse(readRepoFile('docker-compose.observability.yml')) as {
  services: Record<string, { image?: string; profiles?: string[]; ports?: string[]; environment?: Record<string, string> }>;
};
const replicas = parse(readRepoFile('docker-compose.replicas.yml')) as { services: Record<string, { scale?: number; environment?: Record<string, string> }> };

function dependsOn(svc: ComposeService): Record<string, string | undefined> {
  const deps = svc.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, undefined]));
  return Object.fromEntries(Object.entries(deps).map(([k, v]) => [k, v?.condition]));
}

function argv(value: string[] | string | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : value.split(/\s+/);
}

/** The redis conf a Redis service runs (its command names infra/redis/<file>.conf), parsed. */
function redisSettings(svc: ComposeService): Map<string, string> {
  const args = [...argv(svc.entrypoint), ...argv(svc.command)];
  const settings = new Map<string, string>();
  const conf = args.find((a) => a.endsWith('.conf'));
  if (conf) {
    const file = conf.split('/').pop() as string;
    for (const raw of readRepoFile('infra', 'redis', file).split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const [key, ...rest] = line.split(/\s+/);
      settings.set((key as string).toLowerCase(), rest.join(' ').replace(/^"(.*)"$/, '$1'));
    }
  }
  // Flags after the conf win, as they do in redis-server.
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a.startsWith('--') && i + 1 < args.length) settings.set(a.slice(2).toLowerCase(), args[i + 1] as string);
  }
  return settings;
}

function publishedOn(port: string | { host_ip?: string }): string | undefined {
  if (typeof port === 'string') return /^(\d{1,3}(?:\.\d{1,3}){3}):/.exec(port)?.[1];
  return port.host_ip;
}

describe('docker-compose.yml', () => {
  it('parses and declares the two Redis servers, PostgreSQL and the three services', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['ai-agents', 'lb', 'multimodal-worker', 'postgres', 'redis-cache', 'redis-state', 'retrieval-proxy']);
  });

  it("uses only what Debian's Compose 1.29 reads: no top-level name, env_file entries as plain paths", () => {
    expect(Object.keys(parse(text) as object)).not.toContain('name');
    for (const [name, svc] of Object.entries(compose.services) as Array<[string, ComposeService & { env_file?: unknown }]>) {
      for (const entry of [svc.env_file ?? []].flat()) expect(typeof entry, name).toBe('string');
    }
  });

  it('takes the base images from NODE_IMAGE, REDIS_IMAGE, DEBIAN_IMAGE and POSTGRES_IMAGE, the public ones by default', () => {
    expect(text).toMatch(/\$\{NODE_IMAGE:-node:20-bookworm-slim\}/);
    expect(compose.services.postgres?.image).toBe('${POSTGRES_IMAGE:-pgvector/pgvector:pg15}');
    expect(text).toMatch(/\$\{REDIS_IMAGE:-redis:7-alpine\}/);
    expect(text).toMatch(/\$\{DEBIAN_IMAGE:-debian:bookworm-slim\}/);
  });

  it('refuses to start without REDIS_PASSWORD, POSTGRES_PASSWORD and CACHE_ADMIN_TOKEN instead of running with blank secrets', () => {
    expect(text).toMatch(/\$\{REDIS_PASSWORD:\?[^}]+\}/);
    expect(text).toMatch(/\$\{POSTGRES_PASSWORD:\?[^}]+\}/);
    expect(text).toMatch(/\$\{CACHE_ADMIN_TOKEN:\?[^}]+\}/);
    expect(text).not.toMatch(/\$\{(REDIS_PASSWORD|POSTGRES_PASSWORD|CACHE_ADMIN_TOKEN)(:?-[^}]*)?\}/);
  });

  describe('postgres (the retrieval index)', () => {
    const svc = compose.services.postgres as ComposeService & { stop_grace_period?: string };
    const env = environmentOf(svc);

    it('makes its user and database from the environment, the password only from .env', () => {
      expect(env.POSTGRES_USER).toBe('aicache');
      expect(env.POSTGRES_DB).toBe('aicache');
      expect(env.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/);
    });

    it('has a pg_isready healthcheck over TCP, with no password on its command line', () => {
      const test = argv(svc.healthcheck?.test).join(' ');
      expect(svc.healthcheck?.disable).not.toBe(true);
      expect(test).toMatch(/pg_isready/);
      expect(test).toMatch(/-h 127\.0\.0\.1/);
      expect(test).not.toMatch(/PASSWORD/);
    });

    it('keeps its data on a named volume', () => {
      const volumes = (svc.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
      const data = volumes.find((v) => v.split(':')[1] === '/var/lib/postgresql/data');
      expect(data, 'a volume on /var/lib/postgresql/data').toBeDefined();
      expect(Object.keys(compose.volumes ?? {})).toContain((data as string).split(':')[0]);
    });

    it('publishes no port; docker-compose.postgres-port.yml publishes one on 127.0.0.1 only', () => {
      expect(svc.ports ?? []).toEqual([]);
      const extra = parse(readRepoFile('docker-compose.postgres-port.yml')) as { services: Record<string, ComposeService> };
      expect(Object.keys(extra.services)).toEqual(['postgres']);
      const ports = extra.services.postgres?.ports ?? [];
      expect(ports.length).toBe(1);
      for (const port of ports) expect(publishedOn(port)).toBe('127.0.0.1');
    });

    it('is what retrieval-proxy indexes into by default, once it is healthy', () => {
      const proxy = compose.services['retrieval-proxy'] as ComposeService;
      const proxyEnv = environmentOf(proxy);
      expect(proxyEnv.RETRIEVAL_INDEX).toBe('${RETRIEVAL_INDEX:-pgvector}');
      expect(proxyEnv.DATABASE_URL).toMatch(/^postgres:\/\/aicache:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432\/aicache$/);
      expect(dependsOn(proxy).postgres).toBe('service_healthy');
    });
  });

  describe.each(['redis-cache', 'redis-state'])('%s', (name) => {
    const svc = compose.services[name] as ComposeService;

    it('is Redis 7 with a healthcheck that pings with the password kept out of the command line', () => {
      expect(svc.image).toMatch(/^\$\{REDIS_IMAGE:-redis:7[^}]*\}$/);
      const test = argv(svc.healthcheck?.test).join(' ');
      expect(test).toMatch(/redis-cli/);
      expect(test).toMatch(/ping/i);
      expect(test).not.toMatch(/REDIS_PASSWORD|-a\s/);
      expect(environmentOf(svc).REDISCLI_AUTH).toMatch(/\$\{REDIS_PASSWORD:\?/);
    });

    it('publishes no port beyond 127.0.0.1', () => {
      for (const port of svc.ports ?? []) expect(publishedOn(port)).toBe('127.0.0.1');
    });

    it('gets its ACL user from the environment: default user off, password never in the conf', () => {
      expect(argv(svc.entrypoint).join(' ')).toMatch(/start-redis\.sh/);
      expect(environmentOf(svc).REDIS_PASSWORD).toMatch(/\$\{REDIS_PASSWORD:\?/);
      const settings = redisSettings(svc);
      expect(settings.get('aclfile')).toBeTruthy();
      expect(settings.has('requirepass')).toBe(false);
    });
  });

  it('redis-state never evicts and logs every write (AOF, fsync every second) to a volume', () => {
    const svc = compose.services['redis-state'] as ComposeService;
    const settings = redisSettings(svc);
    expect(settings.get('maxmemory-policy')).toBe('noeviction');
    expect(settings.get('appendonly')).toBe('yes');
    expect(settings.get('appendfsync')).toBe('everysec');
    const volumes = (svc.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    const dataVolume = volumes.find((v) => v.split(':')[1] === '/data');
    expect(dataVolume, 'a volume on /data').toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain((dataVolume as string).split(':')[0]);
  });

  it('redis-cache evicts least-recently-used keys under a memory limit and persists nothing', () => {
    const settings = redisSettings(compose.services['redis-cache'] as ComposeService);
    expect(settings.get('maxmemory-policy')).toBe('allkeys-lru');
    expect(settings.get('maxmemory')).toMatch(/^[1-9]\d*(mb|gb|kb)?$/i);
    expect(settings.get('appendonly')).toBe('no');
    expect(settings.get('save')).toBe('');
  });

  describe.each(SERVICES.map((s) => [s.name, s] as const))('%s', (name, spec) => {
    const svc = compose.services[name] as ComposeService;
    const env = environmentOf(svc);

    it('is built from the one Dockerfile, with its name and port as build args', () => {
      const build = typeof svc.build === 'string' ? { context: svc.build } : (svc.build ?? {});
      expect(build.context).toBe('.');
      expect(build.dockerfile).toBe('Dockerfile');
      const args = (build as { args?: Record<string, string | number> }).args ?? {};
      expect(args.SERVICE).toBe(name);
      expect(String(args.PORT)).toBe(String(spec.port));
      expect(args.NODE_IMAGE).toBe('${NODE_IMAGE:-node:20-bookworm-slim}');
    });

    it('has a readiness healthcheck on its own port', () => {
      const test = argv(svc.healthcheck?.test).join(' ');
      expect(svc.healthcheck?.disable).not.toBe(true);
      expect(test).toContain('/ready');
      const port = test.includes('$${PORT}') ? env.PORT : /127\.0\.0\.1[:/](\d+)/.exec(test)?.[1];
      expect(String(port)).toBe(String(spec.port));
    });

    it('starts only after its Redis servers and the peer it calls are healthy', () => {
      const deps = dependsOn(svc);
      expect(deps['redis-cache']).toBe('service_healthy');
      if (env.REDIS_STATE_URL) expect(deps['redis-state']).toBe('service_healthy');
      if (spec.peer) expect(deps[spec.peer]).toBe('service_healthy');
    });

    it('publishes no port itself (it can be scaled); the load balancer publishes it on 127.0.0.1', () => {
      expect(svc.ports ?? []).toEqual([]);
      const variable = `${spec.name.toUpperCase().replace(/-/g, '_')}_HOST_PORT`;
      expect(compose.services.lb?.ports).toContain(`127.0.0.1:\${${variable}:-${spec.port}}:${spec.port}`);
    });

    it('drains on SIGTERM: an init forwards it and the stop timeout outlasts the 10 s grace', () => {
      const s = svc as ComposeService & { init?: boolean; stop_grace_period?: string; read_only?: boolean };
      expect(s.init).toBe(true);
      expect(Number.parseInt(s.stop_grace_period ?? '10', 10)).toBeGreaterThan(10);
      expect(s.read_only).toBe(true);
    });

    it('gets production settings, its DB, its peer URL and both Redis URLs from the environment', () => {
      expect(env.NODE_ENV).toBe('production');
      expect(env.HOST).toBe('0.0.0.0');
      expect(String(env.PORT)).toBe(String(spec.port));
      expect(env[spec.dbVar]).toMatch(new RegExp(`^(${spec.db}|\\$\\{${spec.dbVar}:-${spec.db}\\})$`));
      expect(env.REDIS_URL).toMatch(/^redis:\/\/.*@redis-cache:6379$/);
      expect(env.REDIS_STATE_URL).toMatch(/^redis:\/\/.*@redis-state:6379$/);
      expect(env.CACHE_ADMIN_TOKEN).toMatch(/^\$\{CACHE_ADMIN_TOKEN:\?/);
      if (spec.peerVar) expect(env[spec.peerVar]).toBe(`http://lb:${SERVICES.find((s) => s.name === spec.peer)?.port}`);
    });
  });
});

describe('docker-compose.replicas.yml', () => {
  it('scales retrieval-proxy to 3 and ai-agents to 2', () => {
    expect(replicas.services['retrieval-proxy']?.scale).toBe(3);
    expect(replicas.services['ai-agents']).toEqual({ scale: 2 });
  });

  it('turns the in-process tier on for search answers on the proxy replicas, and nothing else', () => {
    expect(replicas.services['retrieval-proxy']).toEqual({
      scale: 3,
      environment: { CACHE_L1_MAX_BYTES_SEARCH_RESULTS: '${CACHE_L1_MAX_BYTES_SEARCH_RESULTS:-16000000}' },
    });
  });

  it('balances every replica through HAProxy found by DNS, checked on /health', () => {
    const cfg = readRepoFile('infra', 'haproxy', 'haproxy.cfg');
    for (const spec of SERVICES) expect(cfg).toMatch(new RegExp(`server-template \\S+ \\d+ ${spec.name}:${spec.port}`));
    expect(cfg).toMatch(/option httpchk GET \/health/);
    expect(cfg).toMatch(/nameserver \S+ 127\.0\.0\.11:53/);
  });

  it('advertises a keep-alive timeout shorter than the one after which it closes an idle client connection', () => {
    const cfg = readRepoFile('infra', 'haproxy', 'haproxy.cfg');
    const closesAfter = Number(/^\s*timeout http-keep-alive (\d+)s$/m.exec(cfg)?.[1]);
    const advertised = [...cfg.matchAll(/^frontend (\S+)\n(?:[ \t]+.*\n)*?[ \t]+http-after-response set-header Keep-Alive "timeout=(\d+)"$/gm)];
    expect(advertised.map((m) => m[1]).sort()).toEqual(SERVICES.map((s) => s.name).sort());
    // Node's fetch lets go of an idle connection one second before the advertised timeout.
    for (const m of advertised) expect(Number(m[2])).toBeLessThan(closesAfter - 1);
    expect(closesAfter).toBeGreaterThan(0);
  });
});

// Each Compose found here parses the files for real (Compose v2 where the plugin exists, Debian's 1.29).
describe('docker-compose.observability.yml', () => {
  const tools = ['prometheus', 'grafana', 'jaeger'];

  it('adds Prometheus, Grafana and Jaeger, public images in the observability profile only, published on 127.0.0.1', () => {
    for (const name of tools) {
      const svc = observability.services[name];
      expect(svc?.profiles, name).toEqual(['observability']);
      expect(svc?.image, name).toMatch(/^[a-z/-]+:[\w.-]+$/);
      for (const port of svc?.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('points the three services at Jaeger over OTLP unless .env names another endpoint', () => {
    for (const spec of SERVICES) {
      expect(observability.services[spec.name]).toEqual({
        environment: { OTEL_EXPORTER_OTLP_ENDPOINT: '${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318}' },
      });
    }
  });

  it("gives Prometheus the rules and a config that finds every replica by DNS, and Grafana the dashboard's provisioning", () => {
    const cfg = readRepoFile('infra', 'prometheus', 'prometheus.compose.yml');
    for (const spec of SERVICES) expect(cfg).toMatch(new RegExp(`names: \\[${spec.name}\\]\\s+type: A\\s+port: ${spec.port}`));
    expect(cfg).toMatch(/rule_files:\s+- alerts\.yml/);
    expect(readRepoFile('docker-compose.observability.yml')).toMatch(/\.\/infra\/grafana\/provisioning:\/etc\/grafana\/provisioning:ro/);
  });
});

const composes = composeClis();
if (composes.length === 0) console.log('compose config checks skipped: neither `docker compose` nor `docker-compose` runs here');

describe.each(composes.map((c) => [`${c.argv.join(' ')} (${c.version})`, c.argv] as const))('%s config', (_name, argv) => {
  it('accepts docker-compose.yml with docker-compose.replicas.yml', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-config-'));
    try {
      const env = join(dir, 'env');
      writeFileSync(env, 'REDIS_PASSWORD=x\nPOSTGRES_PASSWORD=z\nCACHE_ADMIN_TOKEN=y\n');
      const args = [...argv.slice(1), '--env-file', env, '-f', repoPath('docker-compose.yml'), '-f', repoPath('docker-compose.replicas.yml'), 'config'];
      const r = await run(argv[0] as string, args, { ...process.env, AICACHE_ENV_FILE: env });
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/scale: 3/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts docker-compose.postgres-port.yml, which publishes PostgreSQL on 127.0.0.1 only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-config-'));
    try {
      const env = join(dir, 'env');
      writeFileSync(env, 'REDIS_PASSWORD=x\nPOSTGRES_PASSWORD=z\nCACHE_ADMIN_TOKEN=y\nPOSTGRES_HOST_PORT=15433\n');
      const args = [...argv.slice(1), '--env-file', env, '-f', repoPath('docker-compose.yml'), '-f', repoPath('docker-compose.postgres-port.yml'), 'config'];
      const r = await run(argv[0] as string, args, { ...process.env, AICACHE_ENV_FILE: env });
      expect(r.code, r.output).toBe(0);
      const services = (parse(r.output) as { services: Record<string, { ports?: Array<{ host_ip?: string; published?: string | number } | string> }> }).services;
      const published = Object.entries(services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, p] as const));
      const pg = published.filter(([name]) => name === 'postgres').map(([, p]) => p);
      expect(pg).toHaveLength(1);
      expect(JSON.stringify(pg[0])).toMatch(/15433/);
      for (const [name, p] of published) expect(publishedOn(p), name).toBe('127.0.0.1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to run without POSTGRES_PASSWORD, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-config-'));
    try {
      const env = join(dir, 'env');
      writeFileSync(env, 'REDIS_PASSWORD=x\nCACHE_ADMIN_TOKEN=y\n');
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'POSTGRES_PASSWORD'));
      const args = [...argv.slice(1), '--env-file', env, '-f', repoPath('docker-compose.yml'), 'config'];
      const r = await run(argv[0] as string, args, { ...clean, AICACHE_ENV_FILE: env });
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(/POSTGRES_PASSWORD/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts docker-compose.yml with docker-compose.observability.yml and its profile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-config-'));
    try {
      const env = join(dir, 'env');
      writeFileSync(env, 'REDIS_PASSWORD=x\nPOSTGRES_PASSWORD=w\nCACHE_ADMIN_TOKEN=y\nGRAFANA_ADMIN_PASSWORD=z\n');
      const files = ['-f', repoPath('docker-compose.yml'), '-f', repoPath('docker-compose.observability.yml')];
      const r = await run(argv[0] as string, [...argv.slice(1), '--env-file', env, ...files, '--profile', 'observability', 'config'], { ...process.env, AICACHE_ENV_FILE: env });
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/jaegertracing\/all-in-one/);
      expect(r.output).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT: http:\/\/jaeger:4318/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
