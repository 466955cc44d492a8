import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig, type TidegateConfig } from '../config/index.js';
import { TidegateError } from '../model/index.js';

export const CONFIG_FILE = 'tidegate.yaml';

export class TargetNotFoundError extends TidegateError {
  constructor(target: string, file: string) {
    super('TargetNotFound', `${file} declares no target named "${target}"`);
  }
}

/** Reads and validates tidegate.yaml from a checkout. */
export function loadConfig(dir: string, label = CONFIG_FILE): TidegateConfig {
  const file = join(dir, CONFIG_FILE);
  if (!existsSync(file)) throw new TidegateError('ConfigMissing', `${label} not found at the root of the repository`);
  return parseConfig(readFileSync(file, 'utf8'), label);
}

