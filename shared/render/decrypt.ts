import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { KubeObject } from '../model/index.js';
import type { SopsKeys } from '../config/index.js';
import { RenderError, type RenderProblem } from './errors.js';
import { isRemote, kustomizationFile, readKustomization, realRelative } from './inputs.js';
import { CIPHERTEXT, SopsError, formatOf, isEncrypted, sopsDecryptor, withhold, type SopsFormat } from './sops.js';

/**
 * What a render does with SOPS-encrypted files: decrypt them (a target with decryption), put
 * placeholders in for their values (the same, for a change not signed off: no key is used), refuse
 * them (a target without decryption: ciphertext is never applied), or leave them as they are
 * (reading Flux configuration, where nothing is applied).
 */
export type EncryptedFiles = 'decrypt' | 'withhold' | 'refuse' | 'leave';

/** The render's handling of encrypted files, and the values it decrypted (never to be quoted). */
export interface Decryption {
  /** A plain manifest file's text, as the mode says (file: its path in the repository, for problems). */
  manifest(text: string, file: string): Promise<string>;
  /**
   * kustomize: the encrypted resources, patches and secretGenerator files and envs of the
   * kustomization tree at `path` of `work`, replaced; in a scratch copy of `work` (returned, for the
   * caller to remove) when `work` is the checkout itself, and only when there is anything to replace.
   */
  kustomizeWork(work: string, path: string, copied: boolean, scratchParent: string): Promise<string>;
  /** A helm values file to pass: decrypted into `scratch` (mode 0600), or undefined when withheld. */
  valuesFile(full: string, name: string, scratch: string): Promise<string | undefined>;
  /** Rendered objects that still hold SOPS ciphertext: refused (they would be applied encrypted). */
  leftovers(objects: ReadonlyArray<{ object: KubeObject; source: string }>): RenderProblem[];
  /** A message with every decrypted value (of 4 characters or more) replaced by ***. */
  redact(text: string): string;
  readonly values: readonly string[];
}

const NO_DECRYPTION =
  'is SOPS-encrypted and the target has no decryption: set decryption: {provider: sops} on it (a Flux Kustomization: spec.decryption)';

const MANIFEST = /\.(ya?ml|json)$/i;

/** One file of a kustomization tree SOPS may have encrypted, and the format it is read in. */
interface KustomizeInput {
  path: string;
  format: SopsFormat;
  /** A configMapGenerator reads it: decrypted, its plaintext would land in a ConfigMap. */
  configMap?: boolean;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const objects = (v: unknown): Array<Record<string, unknown>> =>
  Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];

/** A secretGenerator's files (format by the key's name) and envs (dotenv unless named .yaml/.json). */
function generatorInputs(gen: Record<string, unknown>, local: (entry: string) => string | undefined): KustomizeInput[] {
  const out: KustomizeInput[] = [];
  for (const source of strings(gen['files'])) {
    const at = source.indexOf('=');
    const path = local(at < 0 ? source : source.slice(at + 1));
    if (path !== undefined) out.push({ path, format: formatOf(at < 0 ? source : source.slice(0, at)) });
  }
  for (const env of [...strings(gen['envs']), ...strings([gen['env']])]) {
    const path = local(env);
    const format = formatOf(env);
    if (path !== undefined) out.push({ path, format: format === 'binary' ? 'dotenv' : format });
  }
  return out;
}

/**
 * The files of the kustomization at `dir` and every local one it reaches that Flux decrypts:
 * resources and patches (YAML or JSON), and secretGenerator files (format by the key's name) and
 * envs (dotenv unless named .yaml/.json). A configMapGenerator's files are not: ciphertext there is
 * refused after the build, as plaintext would land in a ConfigMap.
 */
function kustomizeInputs(root: string, start: string): KustomizeInput[] {
  const out: KustomizeInput[] = [];
  const seen = new Set<string>();
  const walk = (dir: string, depth: number): void => {
    const file = kustomizationFile(root, dir);
    if (!file || seen.has(dir) || depth > 20) return;
    seen.add(dir);
    let k: Record<string, unknown> | undefined;
    try {
      k = readKustomization(join(root, file));
    } catch {
      return; // the sandbox check reports it
    }
    if (!k) return;
    const local = (entry: string): string | undefined =>
      isRemote(entry) ? undefined : realRelative(root, posix.normalize(posix.join(dir, entry)));
    const manifests = [
      ...['resources', 'bases', 'components', 'crds', 'patchesStrategicMerge'].flatMap((f) => strings(k?.[f])),
      ...['patches', 'patchesJson6902'].flatMap((f) => objects(k?.[f]).flatMap((p) => strings([p['path']]))),
    ];
    for (const entry of manifests) {
      const path = local(entry);
      if (path === undefined) continue;
      if (statSync(join(root, path)).isDirectory()) walk(path, depth + 1);
      else if (MANIFEST.test(path)) out.push({ path, format: formatOf(path) });
    }
    for (const gen of objects(k['secretGenerator'])) out.push(...generatorInputs(gen, local));
    for (const gen of objects(k['configMapGenerator']))
      out.push(...generatorInputs(gen, local).map((i) => ({ ...i, configMap: true })));
  };
  walk(start, 0);
  return out.filter((i) => existsSync(join(root, i.path)) && statSync(join(root, i.path)).isFile());
}

/** Whether a rendered object holds SOPS ciphertext: in any field, or (a Secret) in a value's decoded bytes. */
function holdsCiphertext(object: KubeObject): boolean {
  if (JSON.stringify(object).includes(CIPHERTEXT)) return true;
  if (object.kind !== 'Secret' && object.kind !== 'ConfigMap') return false;
  const data = (object as { data?: unknown; binaryData?: unknown }).data;
  const binary = (object as { binaryData?: unknown }).binaryData;
  const values = [
    ...(object.kind === 'Secret' && data && typeof data === 'object' ? Object.values(data) : []),
    ...(binary && typeof binary === 'object' ? Object.values(binary) : []),
  ];
  return values.some((v) => typeof v === 'string' && Buffer.from(v, 'base64').toString('utf8').includes(CIPHERTEXT));
}

/** Values shorter than this are not cut out of text (they would cut ordinary words); a value equal to one is (see redactValue). */
export const REDACT_MIN = 4;

/**
 * Text with every secret value in it replaced by ***, as given and base64-encoded (the apiserver
 * quotes a Secret's data so); values under REDACT_MIN characters are left alone.
 */
export function redactText(text: string, secrets: readonly string[]): string {
  const plain = secrets.filter((v) => v.length >= REDACT_MIN);
  const encoded = plain.map((v) => Buffer.from(v).toString('base64').replace(/=+$/, ''));
  return [...new Set([...plain, ...encoded])]
    .sort((a, b) => b.length - a.length)
    .reduce((t, v) => t.split(v).join('***'), text);
}

/**
 * A value shown whole (a diff's from or to): hidden when it is a secret value, whatever its length,
 * or a secret value cut short (a long value is shown as its first characters and "...").
 */
export function redactValue(value: string, secrets: readonly string[], redact: (t: string) => string): string {
  const cut = value.endsWith('...') ? value.slice(0, -3) : undefined;
  if (secrets.some((s) => s === value || (cut !== undefined && cut.length >= REDACT_MIN && s.startsWith(cut))))
    return '***';
  return redact(value);
}

/** The decryption of one render in a mode, with the keys of this process. */
export function decryption(mode: EncryptedFiles, keys: SopsKeys): Decryption {
  const decryptor = sopsDecryptor(keys);
  const values = decryptor.values;
  /** A file's text as the mode says; a file SOPS did not encrypt is returned as it is. */
  const handle = async (text: string, format: SopsFormat, file: string): Promise<string> => {
    if (mode === 'leave' || !isEncrypted(text, format)) return text;
    if (mode === 'refuse') throw new RenderError([{ file, message: NO_DECRYPTION, quotesNothing: true }]);
    try {
      return mode === 'withhold' ? withhold(text, format) : await decryptor.decrypt(text, format);
    } catch (err) {
      if (!(err instanceof SopsError)) throw err;
      throw new RenderError([{ file, message: `cannot decrypt this SOPS file: ${err.message}`, quotesNothing: true }]);
    }
  };
  const redact = (text: string): string => redactText(text, values);
  return {
    values,
    redact,
    manifest: (text, file) => handle(text, MANIFEST.test(file) ? formatOf(file) : 'yaml', file),
    async kustomizeWork(work, path, copied, scratchParent) {
      if (mode === 'leave') return work;
      const found: Array<KustomizeInput & { text: string }> = [];
      for (const input of kustomizeInputs(work, path)) {
        const text = readFileSync(join(work, input.path), 'utf8');
        if (isEncrypted(text, input.format === 'binary' ? 'json' : input.format)) found.push({ ...input, text });
      }
      if (found.length === 0) return work;
      // One file both generators read: the secretGenerator's plaintext copy would be the ConfigMap's too.
      const shared = found.filter((f) => f.configMap && mode !== 'refuse');
      if (shared.length > 0)
        throw new RenderError(
          shared.map((f) => ({
            file: f.path,
            message:
              'a configMapGenerator reads this SOPS-encrypted file: its plaintext would land in a ConfigMap (use a secretGenerator)',
            quotesNothing: true,
          })),
        );
      const replaced = await Promise.all(
        found.map(async (f) => ({ ...f, out: await handle(f.text, f.format, f.path) })),
      );
      const dir = copied ? work : mkdtempSync(join(scratchParent, 'render-'));
      try {
        if (!copied) cpSync(work, dir, { recursive: true, verbatimSymlinks: true });
        for (const { path: file, out } of replaced) {
          rmSync(join(dir, file), { force: true });
          writeFileSync(join(dir, file), out, { mode: 0o600 });
        }
        return dir;
      } catch (err) {
        if (!copied) rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    },
    async valuesFile(full, name, scratch) {
      const text = readFileSync(full, 'utf8');
      const format = formatOf(full) === 'json' ? 'json' : 'yaml';
      if (mode === 'leave' || !isEncrypted(text, format)) return full;
      if (mode === 'withhold') return undefined; // the chart's defaults stand in, as for withheld valuesFrom
      const out = await handle(text, format, name);
      const file = join(scratch, `sops-${posix.basename(name)}`);
      writeFileSync(file, out, { mode: 0o600 });
      return file;
    },
    leftovers(rendered) {
      if (mode === 'leave') return [];
      return rendered
        .filter(({ object }) => holdsCiphertext(object))
        .map(({ object, source }) => ({
          file: source,
          object: `${object.kind}/${object.metadata.name}`,
          message:
            mode === 'refuse'
              ? `holds SOPS ciphertext (ENC[…]) and the target has no decryption: it would be applied encrypted (set decryption: {provider: sops} on the target)`
              : 'holds SOPS ciphertext (ENC[…]) after the render: tidegate decrypts manifests, patches, secretGenerator files and envs, and helm values files, and nothing else (a configMapGenerator would put the plaintext in a ConfigMap: use a secretGenerator)',
        }));
    },
  };
}
