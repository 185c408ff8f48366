import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const RULES = `${REPO}infra/prometheus/alerts.yml`;
export const RULE_TESTS_DIR = `${REPO}infra/prometheus/tests`;

/** Path of an executable on the PATH, or undefined. */
export function which(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export const MISSING_PROMETHEUS =
  'Debian\'s prometheus package is not installed (promtool and prometheus not on the PATH): `apt-get install -y prometheus` (.ci/run does it as root)';
