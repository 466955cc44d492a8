import type { RE2JS } from 're2js';
import { TidegateError, errorMessage } from '../model/index.js';
import { drain, matchSteps, type Steps } from './matcher.js';
/** Reloader's annotation keys, unchanged, so manifests written for stakater Reloader work as they are. */
export const RELOADER = {
  auto: 'reloader.stakater.com/auto',
  configmapAuto: 'configmap.reloader.stakater.com/auto',
  secretAuto: 'secret.reloader.stakater.com/auto',
  configmapReload: 'configmap.reloader.stakater.com/reload',
  secretReload: 'secret.reloader.stakater.com/reload',
  search: 'reloader.stakater.com/search',
  match: 'reloader.stakater.com/match',
  ignore: 'reloader.stakater.com/ignore',
  configmapExclude: 'configmaps.exclude.reloader.stakater.com/reload',
  secretExclude: 'secrets.exclude.reloader.stakater.com/reload',
} as const;

export type SourceKind = 'ConfigMap' | 'Secret';

export interface ReloadSource {
  kind: SourceKind;
  name: string;
  annotations: Readonly<Record<string, string>>;
}

export interface ReloadDecision {
  reload: boolean;
  /** True when the decision came from auto or search/match: then the workload must reference the source. */
  auto: boolean;
  /** Why, in words (for skips and rollouts). */
  reason: string;
}

const parseBool = (v: string | undefined): boolean =>
  v !== undefined && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v);

const keysFor = (kind: SourceKind) =>
  kind === 'ConfigMap'
    ? { named: RELOADER.configmapReload, typedAuto: RELOADER.configmapAuto, exclude: RELOADER.configmapExclude }
    : { named: RELOADER.secretReload, typedAuto: RELOADER.secretAuto, exclude: RELOADER.secretExclude };

/** A reload annotation entry that is not a valid RE2 pattern: the workload it is on is skipped, saying why. */
export class ReloadPatternError extends TidegateError {
  constructor(annotation: string, entry: string, reason: string) {
    super('ReloadPatternInvalid', `${annotation}: "${entry}" is not a valid RE2 pattern: ${reason}`);
  }
}

/**
 * Bounds of reload patterns: no Kubernetes name is longer than 253 characters, so no pattern needs
 * more. Time spent on patterns (compiling and matching) is bounded per workload (past it, that
 * workload is skipped as too costly), per namespace per pass (past it, the namespace's remaining
 * workloads wait for the next pass) and per pass (past it, every remaining workload waits).
 */
export const PATTERN_LIMITS = {
  length: 512,
  repeat: 253,
  budgetMs: 1000,
  namespaceMs: 3000,
  passMs: 60_000,
} as const;

/** Compiled patterns of this container (entries repeat across workloads and passes). */
const compiled = new Map<string, RE2JS>();

/** The RE2 engine, loaded on first use (before a reload pass): functions that never reload do not load it at cold start. */
let engine: typeof RE2JS | undefined;
export async function loadPatternEngine(): Promise<void> {
  engine ??= (await import('re2js')).RE2JS;
}

function compile(annotation: string, entry: string): RE2JS {
  const cached = compiled.get(entry);
  if (cached) return cached;
  if (entry.length > PATTERN_LIMITS.length)
    throw new ReloadPatternError(
      annotation,
      `${entry.slice(0, 40)}…`,
      `longer than ${PATTERN_LIMITS.length} characters`,
    );
  const count = [...entry.matchAll(/\{(\d+)(?:,(\d*))?\}/g)]
    .flatMap((m) => [m[1], m[2]])
    .find((n) => Number(n) > PATTERN_LIMITS.repeat);
  if (count !== undefined)
    throw new ReloadPatternError(
      annotation,
      entry,
      `repetition count ${count} is above ${PATTERN_LIMITS.repeat}, the longest name`,
    );
  if (!engine) throw new TidegateError('ReloadPatternInvalid', 'the pattern engine is not loaded (loadPatternEngine)');
  let pattern: RE2JS;
  try {
    pattern = engine.compile(entry);
  } catch (err) {
    throw new ReloadPatternError(annotation, entry, errorMessage(err));
  }
  if (compiled.size >= 5000) compiled.clear();
  compiled.set(entry, pattern);
  return pattern;
}

/** Time a workload's patterns may spend matching in one pass; past it, that workload is skipped. */
export interface PatternBudget {
  leftMs: number;
}

const compileEngine = (p: string): RE2JS => {
  if (!engine) throw new TidegateError('ReloadPatternInvalid', 'the pattern engine is not loaded (loadPatternEngine)');
  return engine.compile(p);
};

/**
 * An entry of a reload annotation is a regular expression matching the whole name, in RE2's syntax
 * and time (linear in the name, as Reloader's Go regexp), of bounded size, and a workload's patterns
 * share a time budget per pass: a pattern written by any workload author cannot stall the pass.
 * Each compile and each step of a costly match is a step of its own: only the time spent in them
 * counts, not the time the driver spends paused between them.
 */
function* matchesNamed(
  annotation: string,
  list: string | undefined,
  name: string,
  budget?: PatternBudget,
): Steps<boolean> {
  if (list === undefined) return false;
  let started = performance.now();
  const spend = (): void => {
    const now = performance.now();
    if (budget) budget.leftMs -= now - started;
    started = now;
  };
  // Compiling counts too: an annotation of many distinct large patterns costs its workload's budget, not the pass.
  const withinBudget = (): void => {
    spend();
    if (budget && budget.leftMs <= 0)
      throw new TidegateError(
        'ReloadPatternTooCostly',
        `${annotation}: matching its patterns took more than ${PATTERN_LIMITS.budgetMs} ms in this pass`,
      );
  };
  function* pause(): Steps<void> {
    spend();
    yield;
    started = performance.now();
  }
  try {
    const patterns: RE2JS[] = [];
    for (const raw of list.split(',')) {
      withinBudget();
      patterns.push(compile(annotation, raw.trim()));
      yield* pause();
    }
    // Each step of a costly match is charged and may be paused after, as a compile.
    function* metered(steps: Steps<boolean>): Steps<boolean> {
      let step = steps.next();
      for (; !step.done; step = steps.next()) {
        withinBudget();
        yield* pause();
      }
      return step.value;
    }
    for (const pattern of patterns) {
      withinBudget();
      if (yield* metered(matchSteps(pattern, name, compileEngine))) return true;
    }
    return false;
  } finally {
    spend();
  }
}

/**
 * Whether a change of `source` reloads a workload, with Reloader's precedence: the source's
 * ignore annotation, the workload's exclude list, a named reload (regex) entry, search + match,
 * then auto (any or per type). Workload annotations are read first; the pod template's are the
 * fallback only when the workload carries none of the reload annotations.
 */
export function shouldReload(
  source: ReloadSource,
  workload: Readonly<Record<string, string>>,
  podTemplate: Readonly<Record<string, string>>,
  budget?: PatternBudget,
): ReloadDecision {
  return drain(reloadDecision(source, workload, podTemplate, budget));
}

/** shouldReload in steps (a reload pass drives it, pausing between steps). */
export function* reloadDecision(
  source: ReloadSource,
  workload: Readonly<Record<string, string>>,
  podTemplate: Readonly<Record<string, string>>,
  budget?: PatternBudget,
): Steps<ReloadDecision> {
  const no = (reason: string): ReloadDecision => ({ reload: false, auto: false, reason });
  if (source.annotations[RELOADER.ignore] === 'true') return no(`${source.kind} ${source.name} has ${RELOADER.ignore}`);
  const keys = keysFor(source.kind);
  const onWorkload = [keys.named, RELOADER.auto, keys.typedAuto, RELOADER.search].some((k) => k in workload);
  const ann = onWorkload ? workload : podTemplate;
  const excluded = (workload[keys.exclude] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (excluded.includes(source.name)) return no(`${source.kind} ${source.name} is excluded by ${keys.exclude}`);
  if (yield* matchesNamed(keys.named, ann[keys.named], source.name, budget))
    return { reload: true, auto: false, reason: `named in ${keys.named}` };
  if (ann[RELOADER.search] === 'true' && source.annotations[RELOADER.match] === 'true')
    return { reload: true, auto: true, reason: `${RELOADER.search} and ${RELOADER.match}` };
  if (parseBool(ann[RELOADER.auto])) return { reload: true, auto: true, reason: RELOADER.auto };
  if (parseBool(ann[keys.typedAuto])) return { reload: true, auto: true, reason: keys.typedAuto };
  return no('no reload annotation applies');
}

/** Does a workload carry any Reloader annotation (on itself or its pod template)? */
export function hasReloadAnnotations(
  workload: Readonly<Record<string, string>>,
  podTemplate: Readonly<Record<string, string>>,
): boolean {
  const keys = [
    RELOADER.auto,
    RELOADER.configmapAuto,
    RELOADER.secretAuto,
    RELOADER.configmapReload,
    RELOADER.secretReload,
    RELOADER.search,
  ];
  return keys.some((k) => k in workload || k in podTemplate);
}
