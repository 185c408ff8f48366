import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCompose, readRepoFile, repoRoot } from '../src/index.js';

function git(...args: string[]): string {
  return execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' });
}

/** Outputs the tests and scripts write (results/, .data/): cited by the docs, absent from a clone. */
function gitIgnored(path: string): boolean {
  try {
    git('check-ignore', '-q', '--no-index', path);
    return true;
  } catch {
    return false;
  }
}

const FILE_EXT = /\.(ts|js|mjs|cjs|json|md|conf|sh|ya?ml|example|acl|txt)$/;

/**
 * Paths a document cites in backticks or as a link target: anything with a slash or a file extension.
 * URL paths (`/health`), placeholders (`<name>`), globs and commands are not paths.
 */
function citedPaths(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/`([A-Za-z0-9_.][A-Za-z0-9_./-]*)`/g)) {
    const p = m[1]!;
    if (p.includes('/') || FILE_EXT.test(p)) out.add(p);
  }
  for (const m of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
    const p = m[1]!;
    if (!/^[a-z]+:/i.test(p) && !p.startsWith('/')) out.add(p);
  }
  return [...out];
}

describe('documents cite files that exist', () => {
  const tracked = git('ls-files').split('\n').filter(Boolean);
  const trackedNames = new Set(tracked.map((f) => basename(f)));
  const docs = tracked.filter((f) => f.endsWith('.md') && !f.includes('node_modules/'));

  it('finds the documents to check', () => {
    expect(docs).toContain('README.md');
    expect(docs).toContain('services/ai-agents/README.md');
  });

  it.each(docs)('%s', (doc) => {
    const missing = citedPaths(readRepoFile(doc)).filter((p) => {
      const candidates = [join(dirname(doc), p), p];
      if (candidates.some((c) => existsSync(join(repoRoot, c)) || gitIgnored(c))) return false;
      // A bare file name ("test-redis-integration.sh") names a file somewhere in the repo.
      return p.includes('/') || !trackedNames.has(p);
    });
    expect(missing, `${doc} cites paths that do not exist`).toEqual([]);
  });
});

describe('Redis config comments agree with docker-compose.yml', () => {
  const compose = loadCompose();
  const redisServices = Object.entries(compose.services).filter(([, svc]) => {
    const cmd = Array.isArray(svc.command) ? svc.command.join(' ') : (svc.command ?? '');
    return /redis\.\w+\.conf/.test(cmd);
  });

  it('finds the Redis services and their conf files', () => {
    expect(redisServices.map(([name]) => name).sort()).toEqual(['redis-cache', 'redis-state']);
  });

  it.each(redisServices.map(([name]) => name))('%s: the conf says where compose publishes its port', (name) => {
    const svc = compose.services[name]!;
    const cmd = Array.isArray(svc.command) ? svc.command.join(' ') : (svc.command ?? '');
    const conf = readRepoFile('infra', 'redis', /(redis\.\w+\.conf)/.exec(cmd)![1]!);
    const ports = (svc.ports ?? []).map((p) => (typeof p === 'string' ? p : `${p.host_ip ? `${p.host_ip}:` : ''}${p.published}:${p.target}`));
    if (ports.length === 0) {
      expect(conf).toMatch(/publishes no port/);
      return;
    }
    expect(conf).not.toMatch(/publishes no port/);
    for (const port of ports) {
      // "127.0.0.1:${REDIS_CACHE_HOST_PORT:-6380}:6379": the conf names the host address and the variable.
      const m = /^(?:([\d.]+):)?(?:\$\{(\w+)(?::-(\d+))?\}|(\d+)):\d+$/.exec(port);
      expect(m, `unexpected port mapping ${port}`).not.toBeNull();
      const [, host, variable, fallback, fixed] = m!;
      if (host) expect(conf).toContain(host);
      if (variable) expect(conf).toContain(variable);
      expect(conf).toContain(fallback ?? fixed!);
    }
  });
});
