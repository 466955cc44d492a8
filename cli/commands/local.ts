import { structured } from '../format.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { stringify } from 'yaml';
import { SETTINGS_FILE, checkSettings, localSettings, type TargetSpec } from '../../shared/config/index.js';
import { TargetNotFoundError, TidegateError, errorMessage, type KubeObject } from '../../shared/model/index.js';
import { configAt, fluxEntries, loadConfig, type EngineContext } from '../../shared/usecases/index.js';
import { readFlux } from '../../shared/flux/index.js';
import { renderTarget } from '../../shared/render/index.js';
import { artifactSources, chartRepositories, remoteBases } from '../../shared/source/index.js';
import { localEngine } from '../context.js';
import type { Io } from '../output.js';
import { runSync } from './source.js';
import type { SyncArgs } from './sync.js';

/** `tidegate validate`: checks tidegate.yaml (schema, names, dependencies); exit 0 or 2. */
export async function validateCommand(dir: string | undefined, io: Io): Promise<number> {
  const config = await loadConfig(resolve(dir ?? '.'), localSettings());
  io.out(
    `tidegate.yaml is valid: ${config.targets.length} target${config.targets.length === 1 ? '' : 's'} (${config.targets.map((t) => t.name).join(', ')})\n`,
  );
  return 0;
}

/**
 * `tidegate settings check [file]`: the deploy-time settings against schema/settings.schema.json,
 * every problem with its line; `--lambda` as the functions read them (no secret inline); `--out`
 * writes them compact (what `sls package` puts in the package). Exit 0, or 2 with the problems.
 */
export function settingsCheckCommand(
  file: string | undefined,
  args: { lambda?: boolean; out?: string | undefined },
  io: Io,
): number {
  const path = file ?? SETTINGS_FILE;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TidegateError(
      'SettingsMissing',
      `cannot read ${path} (${errorMessage(err)}): the deploy-time settings (docs/deploy.md, step 3)`,
    );
  }
  const settings = checkSettings(text, path, { lambda: args.lambda === true });
  if (args.out) {
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, JSON.stringify(parse(text)));
  }
  const repositories = settings.repositories.length;
  const clusters = Object.keys(settings.clusters).length;
  io.out(
    `${path} is valid${args.lambda ? ' for Lambda' : ''}: ${repositories} ${repositories === 1 ? 'repository' : 'repositories'}, ${clusters} cluster${clusters === 1 ? '' : 's'}\n`,
  );
  return 0;
}

/** `tidegate flux check`: what each Flux object of the repository becomes; exit 1 when something is not supported. */
export async function fluxCheckCommand(args: SyncArgs, io: Io): Promise<number> {
  const dir = resolve(args.dir ?? '.');
  const entries = fluxEntries(dir);
  if (entries.length === 0)
    throw new TidegateError(
      'Usage',
      'no flux paths: neither tidegate.yaml flux: nor clusters/<name>/ with Flux objects',
    );
  const read = await readFlux(dir, entries, localSettings());
  const data = structured(args.output, { mapped: read.mapped, notes: read.notes, unsupported: read.unsupported });
  if (data) {
    io.out(data);
    return read.unsupported.length > 0 ? 1 : 0;
  }
  const lines = [
    `Flux paths: ${entries.map((e) => `${e.path} (cluster ${e.cluster})`).join(', ')}`,
    '',
    ...checkReport(read),
  ];
  io.out(`${lines.join('\n')}\n`);
  return read.unsupported.length > 0 ? 1 : 0;
}

/** The text of `flux check`: what each object becomes, what is read differently, and what is refused, per object. */
function checkReport(read: Awaited<ReturnType<typeof readFlux>>): string[] {
  const where = (f: { file: string; line?: number }) => (f.line ? `${f.file}:${f.line}` : f.file);
  const lines = ['Maps to:'];
  for (const m of read.mapped) lines.push(`  ${m.object} (${m.file}) → ${m.becomes}`);
  // The same note of many objects (every interval) is said once, with the objects it concerns.
  const notes = new Map<string, string[]>();
  for (const n of read.notes) {
    const key = `${n.field ? `${n.field}: ` : ''}${n.message}`;
    notes.set(key, [...(notes.get(key) ?? []), `${where(n)} ${n.object}`]);
  }
  lines.push('', `Read differently (${read.notes.length}):`);
  for (const [note, objects] of notes) lines.push(`  ${note}`, ...objects.map((o) => `      ${o}`));
  lines.push('', `Not supported yet (${read.unsupported.length}):`);
  // Every problem of an object at once, under the object (where it is declared, for which cluster).
  const refused = new Map<string, string[]>();
  for (const u of read.unsupported) {
    const key = `${where(u)} ${u.object}${u.cluster ? ` (cluster ${u.cluster})` : ''}`;
    refused.set(key, [...(refused.get(key) ?? []), `${u.field ? `${u.field}: ` : ''}${u.message}`]);
  }
  for (const [object, problems] of refused) lines.push(`  ${object}`, ...problems.map((p) => `      ${p}`));
  return lines;
}

/**
 * Objects as YAML documents, each after a comment naming the file (or command) it came from: no
 * line folded (a folded deeply indented string may read back as another value) and written for
 * YAML 1.1 readers too (kubectl's: `off`, `yes` quoted), so what is printed reads back as applied.
 */
const documents = (
  objects: ReadonlyArray<{ object: KubeObject; source: string; hook?: { phases: readonly string[]; weight: number } }>,
): string =>
  objects
    .map((o) => {
      // A chart's hook is shown as helm template shows it, after the release's objects, saying when it runs.
      const hook = o.hook ? `# Hook: ${o.hook.phases.join(', ') || '(no known phase)'}, weight ${o.hook.weight}\n` : '';
      return `# Source: ${o.source}\n${hook}${stringify(o.object, { lineWidth: 0, version: '1.1' })}`;
    })
    .join('---\n');

/** An error that says the cluster could not be asked, rather than anything about the target. */
const clusterUnavailable = (err: unknown): boolean =>
  err instanceof TidegateError && ['KubeUnreachable', 'NoCluster', 'UnknownCluster'].includes(err.code);

/**
 * `tidegate render <target>`: prints exactly what a sync would apply (namespaces set, targetNamespace
 * object, tidegate's labels, substitutions), from --dir (default .) or --repo at --revision, by
 * placing the render with the target cluster's discovery; nothing is written. Without a reachable
 * cluster, the objects as rendered, and a note on stderr saying so.
 */
export async function renderCommand(target: string, args: SyncArgs, io: Io): Promise<number> {
  const placed: Parameters<typeof documents>[0][number][] = [];
  const engine: EngineContext = {
    ...localEngine(args),
    prepared: (t, objects, hooks) => {
      if (t === target) placed.push(...objects, ...hooks);
    },
  };
  const { dir, spec } = await checkoutOf(engine, args, target);
  const unavailable = await engine
    .connect(spec.cluster)
    .then((client) => client.discover())
    .then(
      () => undefined,
      (err: unknown) => err,
    );
  if (unavailable !== undefined) {
    if (!clusterUnavailable(unavailable)) throw unavailable;
    const settings = localSettings();
    const out = await renderTarget(
      spec,
      dir,
      settings,
      undefined,
      remoteBases(settings),
      chartRepositories(settings, engine.registry?.credentials, engine.trustedKeys),
      {},
      artifactSources(settings, engine.registry?.credentials, engine.trustedKeys),
    );
    io.err(
      `tidegate: ${errorMessage(unavailable)}: the objects as rendered, without the namespaces and labels a sync sets\n`,
    );
    io.out(documents([...out.objects, ...out.hooks]));
    return 0;
  }
  const results = await runSync(engine, args, target, true);
  const result = results.find((r) => r.target === target);
  // A sync of this revision would fail (the render, or the server's dry-run refusing an object): nothing to show as applied.
  if (result?.outcome === 'failed' || result?.error)
    throw new TidegateError('RenderFailed', result.error ?? 'the sync would fail');
  io.out(documents(placed));
  return 0;
}

/** The checkout and target spec --dir or --repo/--revision name. */
async function checkoutOf(
  engine: EngineContext,
  args: SyncArgs,
  target: string,
): Promise<{ dir: string; spec: TargetSpec }> {
  const { dir, config } = args.repo
    ? await configAt(engine, args.repo, args.revision ? { ref: '', sha: args.revision } : undefined)
    : { dir: resolve(args.dir ?? '.'), config: await loadConfig(resolve(args.dir ?? '.'), engine.settings) };
  const spec = config.targets.find((t) => t.name === target);
  if (!spec) throw new TargetNotFoundError(target, 'tidegate.yaml');
  return { dir, spec };
}
