import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README and the user guide in docs/ stay true: the README stays short, every option of the two
 * JSON schemas has a row in docs/configuration.md, and every command they show exists as written.
 */
const root = join(import.meta.dirname, '..', '..');
const read = (file: string): string => readFileSync(join(root, file), 'utf8');
const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

type Schema = {
  properties?: Record<string, Schema>;
  items?: Schema | Schema[];
  additionalProperties?: Schema | boolean;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
};

/** The keys of a secret reference: `{ "secretsManager": … } | { "ssm": … } | { "value": … }`. */
const SECRET_KEYS = ['secretsManager', 'ssm', 'value'];
const isSecretRef = (s: Schema): boolean => {
  const branches = s.anyOf ?? s.oneOf ?? [];
  return (
    branches.length > 0 &&
    branches.every((b) => {
      const keys = Object.keys(b.properties ?? {});
      return keys.length === 1 && SECRET_KEYS.includes(keys[0] ?? '');
    })
  );
};

/**
 * Every option of a schema as a path: `targets[].gate.approvers.users` (`[]`: an item of an array),
 * `clusters.<key>.eks.name` (`<key>`: a key of a map, written in the docs as any `<placeholder>`). A
 * secret reference is one option (its three forms are documented once, as "secret references").
 */
export function optionPaths(schema: Schema, path = '', out = new Set<string>()): Set<string> {
  if (isSecretRef(schema)) return out;
  for (const sub of [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])])
    optionPaths(sub, path, out);
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    const p = path ? `${path}.${name}` : name;
    out.add(p);
    optionPaths(sub, p, out);
  }
  for (const item of [schema.items ?? []].flat()) optionPaths(item, `${path}[]`, out);
  if (typeof schema.additionalProperties === 'object') optionPaths(schema.additionalProperties, `${path}.<key>`, out);
  return out;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The path as a code span of its own (`` `targets[].gate.approvers` ``), any `<placeholder>` for a map key. */
const pathPattern = (p: string): RegExp =>
  new RegExp('`' + p.split('<key>').map(escape).join('<[A-Za-z][\\w-]*>') + '(`|[ :=])');

describe('README.md', () => {
  it('has at most 250 lines', () => {
    const lines = read('README.md').replace(/\n$/, '').split('\n');
    expect(lines.length).toBeGreaterThan(20);
    expect(lines.length).toBeLessThanOrEqual(250);
  });

  it('shows the status page picture and links the user guide', () => {
    const readme = read('README.md');
    expect(readme).toContain('](docs/status-page.png)');
    for (const doc of ['configuration', 'cli', 'deploy', 'development', 'operations'])
      expect(readme).toContain(`](docs/${doc}.md)`);
  });
});

describe('docs/configuration.md documents every option of the schemas, with its parent path', () => {
  const configuration = read('docs/configuration.md');
  const rows = (['schema/tidegate.schema.json', 'schema/settings.schema.json'] as const).flatMap((file) =>
    [...optionPaths(JSON.parse(read(file)) as Schema)].map((path) => ({ file, path })),
  );

  it('finds the options (the walk reaches items, maps and alternatives)', () => {
    const paths = rows.map((r) => r.path);
    expect(paths).toContain('targets[].createNamespace');
    expect(paths).toContain('targets[].gate.approvers.users');
    expect(paths).toContain('clusters.<key>.eks.roleArn');
    expect(paths).toContain('images[].policy.semver.range');
    expect(paths).toContain('repositories[].token');
    expect(paths).not.toContain('repositories[].token.secretsManager');
  });

  it.each(rows)('$file: `$path`', ({ path }) => {
    expect(configuration).toMatch(pathPattern(path));
  });

  it.each(SECRET_KEYS)('the secret reference form `%s`', (key) => {
    expect(configuration).toMatch(new RegExp('`\\{ ?"' + key + '"'));
  });
});

/** Code blocks and inline code spans of a Markdown file, as lines (a `\` continuation joined). */
function codeLines(text: string): string[] {
  const blocks = [...text.matchAll(/^\s*```[^\n]*\n([\s\S]*?)^\s*```/gm)].map((m) => m[1] ?? '');
  const prose = text.replace(/^\s*```[^\n]*\n[\s\S]*?^\s*```/gm, '');
  const spans = [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? '');
  return [...blocks.flatMap((b) => b.replace(/\\\n\s*/g, ' ').split('\n')), ...spans].map((l) =>
    l.trim().replace(/^\$ /, ''),
  );
}

/** Verbs whose next word is part of the command. */
const SUBVERBS: Record<string, string[]> = { settings: ['check'], flux: ['check'], get: ['targets'] };

/** `tidegate …` and `npm run tidegate -- …` command lines: the verb path and the long options written. */
function tidegateCommands(file: string): Array<{ file: string; line: string; verb: string; options: string[] }> {
  const found = [];
  for (const line of codeLines(read(file))) {
    const m = /^(?:[A-Z_]+=\S+\s+)*(?:npm run tidegate --|npx tidegate|tidegate)\s+(.*)$/.exec(line);
    if (!m) continue;
    const rest = (m[1] ?? '').replace(/\s#\s.*$/, '');
    const words = rest.split(/\s+/).filter(Boolean);
    const first = words[0] ?? '';
    if (!/^[a-z][a-z-]*$/.test(first)) continue; // `tidegate --help`, options only
    const second = words[1] ?? '';
    const verb = SUBVERBS[first]?.includes(second) ? `${first} ${second}` : first;
    const options = [...rest.matchAll(/(?:^|[\s[|(])(--[a-z][a-z0-9-]*)/g)].map((o) => o[1] ?? '');
    found.push({ file, line, verb, options: [...new Set(options)] });
  }
  return found;
}

const helpCache = new Map<string, { status: number | null; text: string }>();
function help(verb: string): { status: number | null; text: string } {
  const cached = helpCache.get(verb);
  if (cached) return cached;
  const args = verb ? [...verb.split(' '), '--help'] : ['--help'];
  const r = spawnSync(process.execPath, [join(root, 'bin', 'tidegate.js'), ...args], { encoding: 'utf8' });
  const result = { status: r.status, text: `${r.stdout}${r.stderr}` };
  helpCache.set(verb, result);
  return result;
}

describe('every tidegate command the README and docs/ show exists, with the options written', () => {
  const commands = docs.flatMap(tidegateCommands);

  it('finds the commands', () => {
    const verbs = new Set(commands.map((c) => c.verb));
    for (const verb of ['validate', 'diff', 'sync', 'settings check']) expect(verbs).toContain(verb);
  });

  it.each(commands)('$file: tidegate $line', ({ verb, options }) => {
    const own = help(verb);
    expect(own.status, `tidegate ${verb} --help: ${own.text}`).toBe(0);
    // The help lists the verb as a command (at the start of a line or of a clause, or after `Usage:
    // tidegate`): a help that does not is the general usage printed for a verb that does not exist.
    expect(own.text).toMatch(new RegExp(`(^|[\\n;])\\s*(usage:\\s*)?(tidegate\\s+)?${escape(verb)}(\\s|$)`, 'i'));
    // An option is the verb's own or a global one (the top-level help lists those).
    const global = help('').text;
    for (const option of options)
      expect(`${own.text}\n${global}`, `${option} of tidegate ${verb}`).toMatch(
        new RegExp(`${escape(option)}(?![\\w-])`),
      );
  });
});

describe('every npm command the README and docs/ show runs a script of package.json', () => {
  const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
  /** npm's own commands that run no script of the package. */
  const BUILTIN = ['ci', 'install', 'i', 'link', 'exec', 'view', 'ls', 'pack', 'publish', 'version', 'config'];
  /** npm's shortcuts for scripts: `npm start` runs the script `start`. */
  const SHORTCUTS = ['start', 'test', 'stop', 'restart'];
  const uses = docs.flatMap((file) =>
    codeLines(read(file)).flatMap(
      (line) =>
        [...line.matchAll(/(?:^|[\s;&|(])npm\s+(?:(run|run-script)\s+)?([a-z][\w:.-]*)/g)]
          .map((m) => ({
            file,
            line,
            run: Boolean(m[1]),
            name: m[2] ?? '',
          }))
          .filter((u) => !(u.name === 'run' || u.name === 'run-script')), // `npm run` alone names no script
    ),
  );

  it('finds them', () => {
    expect(uses.map((u) => u.name)).toEqual(expect.arrayContaining(['ci', 'start', 'test']));
  });

  it.each(uses)('$file: npm $name ($line)', ({ run, name }) => {
    if (run || SHORTCUTS.includes(name)) expect(scripts).toContain(name);
    else expect(BUILTIN).toContain(name);
  });
});
