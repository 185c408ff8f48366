import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const dataDir = process.env.STACK_DATA_DIR ? resolve(process.env.STACK_DATA_DIR) : join(root, '.data');
