import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where tidegate keeps caches and finds its helper binaries on this machine. */
export interface LocalSettings {
  /** Cache root: built test servers, extracted tools, cloned repositories. */
  cacheDir: string;
  /** Explicit kubectl / helm paths, when the user set them. */
  kubectl: string | undefined;
  helm: string | undefined;
  /** The PATH to search last. */
  searchPath: string;
}

/** Reads the local settings from the environment (this module is the only reader of process.env). */
export function localSettings(env: NodeJS.ProcessEnv = process.env): LocalSettings {
  const onLambda = env['AWS_LAMBDA_FUNCTION_NAME'] !== undefined;
  const cacheDir = env['TIDEGATE_CACHE'] ?? (onLambda ? '/tmp/tidegate' : join(env['HOME'] ?? homedir(), '.cache', 'tidegate'));
  return { cacheDir, kubectl: env['TIDEGATE_KUBECTL'], helm: env['TIDEGATE_HELM'], searchPath: env['PATH'] ?? '' };
}
