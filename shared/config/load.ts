import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type * as z from 'zod';
import { errorMessage, TidegateError } from '../model/index.js';
import { configSchema, type TargetSpec, type TidegateConfig } from './schema.js';

export interface ConfigProblem {
  file: string;
  line: number;
  /** e.g. targets[1].timeout */
  field: string;
  message: string;
}

/** tidegate.yaml is invalid; every problem names file, line and field. */
export class ConfigError extends TidegateError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(
      'ConfigInvalid',
      problems.map((p) => `${p.file}:${p.line}: ${p.field ? `${p.field}: ` : ''}${p.message}`).join('\n'),
    );
    this.problems = problems;
  }
}

export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
  );

/** The line of the deepest node on `path` that exists in the document. */
function lineOf(doc: Document, counter: LineCounter, path: ReadonlyArray<PropertyKey>): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node: unknown = doc.getIn(path.slice(0, depth) as unknown[], true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return 1;
}

function zodProblems(file: string, doc: Document, counter: LineCounter, error: z.ZodError): ConfigProblem[] {
  return error.issues.map((issue) => {
    // An unknown key: point at the key itself.
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] ?? ''] : issue.path;
    return { file, line: lineOf(doc, counter, path), field: formatPath(path), message: issue.message };
  });
}

/** Names that repeat, dependsOn entries that name no target, and dependency cycles: each with its target. */
export function targetProblems(targets: TargetSpec[]): Array<{ target: string; message: string }> {
  return graphProblems(targets).map((p) => ({
    target: targets[p.index]?.name ?? '',
    message: p.field === 'name' || p.field === 'dependsOn' ? p.message : `${p.field}: ${p.message}`,
  }));
}

/** Names that repeat, dependsOn entries that name no target, and dependency cycles. */
function graphProblems(targets: TargetSpec[]): Array<{ index: number; field: string; message: string }> {
  const problems: Array<{ index: number; field: string; message: string }> = [];
  const byName = new Map<string, number>();
  targets.forEach((t, i) => {
    if (byName.has(t.name)) problems.push({ index: i, field: 'name', message: `target "${t.name}" is declared twice` });
    byName.set(t.name, i);
  });
  targets.forEach((t, i) =>
    t.dependsOn.forEach((dep, j) => {
      if (!byName.has(dep))
        problems.push({ index: i, field: `dependsOn[${j}]`, message: `depends on "${dep}", which is not a target` });
    }),
  );
  const cycle = findCycle(targets);
  if (cycle)
    problems.push({
      index: byName.get(cycle[0] ?? '') ?? 0,
      field: 'dependsOn',
      message: `dependency cycle: ${cycle.join(' → ')}`,
    });
  return problems;
}

/** A dependency cycle as a list of names (first = last), or undefined. */
export function findCycle(targets: ReadonlyArray<Pick<TargetSpec, 'name' | 'dependsOn'>>): string[] | undefined {
  const deps = new Map(targets.map((t) => [t.name, t.dependsOn]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of deps.get(name) ?? []) {
      const found = deps.has(dep) ? visit(dep) : undefined;
      if (found) return found;
    }
    stack.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const t of targets) {
    const found = visit(t.name);
    if (found) return found;
  }
  return undefined;
}

/** tidegate.yaml is at most this large (a few hundred targets take a few tens of KiB). */
export const CONFIG_LIMIT_BYTES = 512 * 1024;

/** Parses and validates tidegate.yaml; throws ConfigError naming file, line and field. */
export function parseConfig(text: string, file = 'tidegate.yaml'): TidegateConfig {
  // The YAML library's document model costs hundreds of bytes a token: a bound on the text bounds it.
  if (text.length > CONFIG_LIMIT_BYTES)
    throw new ConfigError([
      {
        file,
        line: 1,
        field: '',
        message: `${Math.round(text.length / 1024)} KiB, more than ${CONFIG_LIMIT_BYTES / 1024} KiB (a tidegate.yaml that large is not read)`,
      },
    ]);
  const { data: config, doc, counter } = parseValidated(text, file, configSchema);
  // With flux paths, more targets come from the Flux objects: the graph is checked once they are known.
  if (config.flux.length > 0) return config;
  const problems = graphProblems(config.targets).map((p) => ({
    file,
    line: lineOf(doc, counter, [
      'targets',
      p.index,
      ...(p.field.startsWith('dependsOn[') ? ['dependsOn', Number(p.field.slice(10, -1))] : [p.field]),
    ]),
    field: `targets[${p.index}].${p.field}`,
    message: p.message,
  }));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * A YAML (or JSON) text checked against a schema: its value with the document it was read from, or
 * a ConfigError naming each problem's file, line and field. `more` adds problems the schema cannot
 * see (they refuse the text too).
 */
export function parseValidated<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  more: (doc: Document, counter: LineCounter) => ConfigProblem[] = () => [],
): { data: z.output<S>; doc: Document; counter: LineCounter } {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file,
        line: counter.linePos(e.pos[0]).line,
        field: '',
        message: e.message.split('\n')[0] ?? e.message,
      })),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // An unresolved alias ("*x" with no "&x") or an alias bomb: found only when the document is built.
    throw new ConfigError([{ file, line: 1, field: '', message: errorMessage(err) }]);
  }
  const parsed = schema.safeParse(data);
  const problems = [...(parsed.success ? [] : zodProblems(file, doc, counter, parsed.error)), ...more(doc, counter)];
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return { data: parsed.data, doc, counter };
}

/** Targets ordered so that every target comes after the ones it depends on (config already validated). */
export function orderTargets<T extends Pick<TargetSpec, 'name' | 'dependsOn'>>(targets: readonly T[]): T[] {
  const byName = new Map(targets.map((t) => [t.name, t]));
  const ordered: T[] = [];
  const seen = new Set<string>();
  const visit = (t: T): void => {
    if (seen.has(t.name)) return;
    seen.add(t.name);
    for (const dep of t.dependsOn) {
      const d = byName.get(dep);
      if (d) visit(d);
    }
    ordered.push(t);
  };
  targets.forEach(visit);
  return ordered;
}
