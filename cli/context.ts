import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient } from '../shared/cluster/index.js';
import { kubeConfigForAlias } from '../shared/cluster/kubeconfig.js';
import { localSettings } from '../shared/config/index.js';
import type { EngineContext } from '../shared/engine/index.js';
import { githubClients } from '../shared/github/index.js';
import { jsonLogger } from '../shared/telemetry/index.js';

export interface LocalOptions {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  verbose?: boolean;
}

/** The engine wired for a local run: cluster aliases are kubeconfig contexts. */
export function localEngine(opts: LocalOptions): EngineContext {
  const settings = localSettings();
  const kubeconfig = opts.kubeconfig ?? settings.kubeconfig;
  return {
    settings,
    connect: (alias) => Promise.resolve(new KubeClient(kubeConfigForAlias(kubeconfig, alias, opts.context))),
    gitSource: (url) => ({ url, ...(settings.gitToken ? { token: settings.gitToken } : {}) }),
    github: githubClients(() => ({ apiUrl: settings.githubApiUrl, token: settings.gitToken })),
    trustedKeys: (names) => Promise.resolve(readTrustedKeys(settings.trustedKeysDir, names)),
    logger: jsonLogger(opts.verbose ? 'debug' : 'warn'),
  };
}

/** Trusted keys from a directory: <name>, <name>.asc or <name>.pub. */
function readTrustedKeys(dir: string | undefined, names: readonly string[]): Array<{ name: string; key: string }> {
  if (!dir) return [];
  return names.flatMap((name) => {
    const file = [name, `${name}.asc`, `${name}.pub`].map((f) => join(dir, f)).find((f) => existsSync(f));
    return file ? [{ name, key: readFileSync(file, 'utf8') }] : [];
  });
}
