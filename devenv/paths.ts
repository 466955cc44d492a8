import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { localSettings } from '../shared/config/index.js';

/** Pinned versions of the real servers the tests and the demo start. */
export const VERSIONS = {
  kubernetes: '1.34.4',
  etcd: '3.6.16',
  registry: '3.1.2',
  moto: '5.2.5',
  cfnLint: '1.58.0',
} as const;

export const cacheDir = (): string => localSettings().cacheDir;

/** Where scripts/build-test-binaries.sh puts what it builds (keyed by every version). */
export function builtBinDir(): string {
  return join(cacheDir(), 'bin', `k8s-${VERSIONS.kubernetes}-etcd-${VERSIONS.etcd}-registry-${VERSIONS.registry}`);
}

/** kube-apiserver and etcd: KUBEBUILDER_ASSETS when it holds both, else the cached build. */
export function kubeBinDir(): string {
  const assets = process.env['KUBEBUILDER_ASSETS'];
  if (assets && existsSync(join(assets, 'kube-apiserver')) && existsSync(join(assets, 'etcd'))) return assets;
  return builtBinDir();
}

/** One Python venv for the Python tools the tests use: moto (server) and cfn-lint. */
export const motoVenvDir = (): string => join(cacheDir(), `py-venv-moto-${VERSIONS.moto}-cfn-lint-${VERSIONS.cfnLint}`);

/** A headless browser for the status-page test: TIDEGATE_CHROMIUM, else Debian's chromium (setup installs it when missing). */
export function chromiumPath(): string | undefined {
  const named = process.env['TIDEGATE_CHROMIUM'];
  if (named) return named;
  return ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
}
