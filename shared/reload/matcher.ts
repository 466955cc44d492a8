import type { RE2JS } from 're2js';

/**
 * A whole-name match of an RE2 pattern, in steps: the caller may pause between any two (yield to
 * the event loop, look at its deadline), so one costly pattern never holds the thread for longer
 * than one step. A pattern whose match is cheap (program size × name length small) is matched by
 * RE2JS at once; a costly one (one RE2JS match of a 512-character pattern can take a second) runs
 * on RE2JS's own compiled program in a Pike VM (the NFA simulation RE2 uses: linear in program ×
 * name, one step per character of the name). Both give RE2JS's answer: the VM is checked against
 * RE2JS when first used, and not used if it differs (RE2JS then matches at once, as before).
 */
export type Steps<T> = Generator<void, T, void>;

/** Runs steps to the end without pausing. */
export const drain = <T>(steps: Steps<T>): T => {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
};

/** Above this many instruction-steps (program size × (name length + 1)), a match runs in steps (about 1 to 5 ms unstepped). */
export const STEPPED_ABOVE = 50_000;

// RE2JS's instruction codes (src/Inst.js), checked by the probe below before the VM is used.
const ALT = 1;
const ALT_MATCH = 2;
const CAPTURE = 3;
const EMPTY_WIDTH = 4;
const FAIL = 5;
const MATCH = 6;
const NOP = 7;
const RUNE = 8;
const RUNE1 = 9;
const RUNE_ANY = 10;
const RUNE_ANY_NOT_NL = 11;

// Empty-width conditions (RE2's EmptyOp bits, as RE2JS's Utils).
const BEGIN_LINE = 1;
const END_LINE = 2;
const BEGIN_TEXT = 4;
const END_TEXT = 8;
const WORD_BOUNDARY = 16;
const NO_WORD_BOUNDARY = 32;

interface Inst {
  op: number;
  out: number;
  arg: number;
  runes: ArrayLike<number>;
  matchRune(r: number): boolean;
}
interface Prog {
  inst: Inst[];
  start: number;
}

const isWord = (r: number): boolean =>
  (r >= 48 && r <= 57) || (r >= 65 && r <= 90) || (r >= 97 && r <= 122) || r === 95;

/** The empty-width conditions that hold between rune r1 and rune r2 (-1: the text's start or end). */
function context(r1: number, r2: number): number {
  let op = 0;
  if (r1 < 0) op |= BEGIN_TEXT | BEGIN_LINE;
  if (r1 === 10) op |= BEGIN_LINE;
  if (r2 < 0) op |= END_TEXT | END_LINE;
  if (r2 === 10) op |= END_LINE;
  return op | (isWord(r1) !== isWord(r2) ? WORD_BOUNDARY : NO_WORD_BOUNDARY);
}

/** The compiled program of a pattern, when it has the shape the VM knows (no lookbehinds, known instructions). */
const programs = new WeakMap<RE2JS, Prog | null>();
function programOf(pattern: RE2JS): Prog | undefined {
  const known = programs.get(pattern);
  if (known !== undefined) return known ?? undefined;
  const prog = (pattern.re2() as { prog?: Partial<Prog> & { numLb?: number } } | null)?.prog;
  const ok =
    !!prog &&
    Array.isArray(prog.inst) &&
    typeof prog.start === 'number' &&
    (prog.numLb ?? 0) === 0 &&
    prog.inst.every(
      (i: Partial<Inst>) =>
        typeof i.op === 'number' &&
        i.op >= ALT &&
        i.op <= RUNE_ANY_NOT_NL &&
        typeof i.out === 'number' &&
        typeof i.arg === 'number' &&
        typeof i.matchRune === 'function',
    );
  programs.set(pattern, ok ? (prog as Prog) : null);
  return ok ? (prog as Prog) : undefined;
}

/** One list of threads (program counters), each added once per position. */
class Threads {
  readonly pcs: Int32Array;
  size = 0;
  constructor(n: number) {
    this.pcs = new Int32Array(n);
  }
}

/**
 * Follows the empty transitions from pc (alternations, captures, empty-width conditions holding
 * under `cond`) and adds the instructions that consume a rune, or match, to the list.
 */
function follow(
  inst: readonly Inst[],
  list: Threads,
  start: number,
  cond: number,
  seen: Uint32Array,
  gen: number,
  stack: Int32Array,
): void {
  let sp = 0;
  stack[sp++] = start;
  while (sp > 0) {
    let pc = stack[--sp] ?? 0;
    while (pc !== 0 && seen[pc] !== gen) {
      seen[pc] = gen;
      const i = inst[pc] as Inst;
      if (i.op === FAIL) pc = 0;
      else if (i.op === ALT || i.op === ALT_MATCH) {
        stack[sp++] = i.arg;
        pc = i.out;
      } else if (i.op === EMPTY_WIDTH) pc = (i.arg & ~cond) === 0 ? i.out : 0;
      else if (i.op === NOP || i.op === CAPTURE) pc = i.out;
      else {
        list.pcs[list.size++] = pc;
        pc = 0;
      }
    }
  }
}

/** Whether instruction i consumes rune r (never the end of the text, -1). */
function consumes(i: Inst, r: number): boolean {
  if (r < 0) return false;
  switch (i.op) {
    case RUNE:
      return i.matchRune(r);
    case RUNE1:
      return r === i.runes[0];
    case RUNE_ANY:
      return true;
    case RUNE_ANY_NOT_NL:
      return r !== 10;
    default:
      return false;
  }
}

/** The Pike VM: whether the program matches the whole name, one step per rune (linear: each instruction once per position). */
function* pike(prog: Prog, name: string): Steps<boolean> {
  const inst = prog.inst;
  const n = inst.length;
  let cur = new Threads(n);
  let next = new Threads(n);
  const seen = new Uint32Array(n);
  const stack = new Int32Array(2 * n + 2);
  const runes = Array.from(name, (ch) => ch.codePointAt(0) ?? 0);
  let gen = 1;
  follow(inst, cur, prog.start, context(-1, runes[0] ?? -1), seen, gen, stack);
  for (let p = 0; ; p++) {
    const r = runes[p] ?? -1;
    gen++;
    next.size = 0;
    const cond = context(r, runes[p + 1] ?? -1);
    for (let j = 0; j < cur.size; j++) {
      const i = inst[cur.pcs[j] ?? 0] as Inst;
      if (i.op === MATCH) {
        if (r < 0) return true;
      } else if (consumes(i, r)) follow(inst, next, i.out, cond, seen, gen, stack);
    }
    if (r < 0 || next.size === 0) return false;
    [cur, next] = [next, cur];
    yield;
  }
}

/** Whether the VM gives RE2JS's answers on patterns using every instruction and condition it knows (else it is not used). */
function probe(compile: (p: string) => RE2JS): boolean {
  const cases: Array<[string, string[]]> = [
    ['a|b*c', ['a', 'bbc', 'c', 'ab']],
    ['(?i)aB[c-e]+', ['AbCDe', 'abf']],
    ['\\bx\\B.*\\b', ['xyz', 'x-y', 'x']],
    ['(?m)^a$\\n?^b', ['a\nb', 'ab']],
    ['(?s).x.', ['\nxy', 'x']],
    ['[^a]?\\pL{2}', ['ééé', 'aé', 'zz']],
    ['(a+)+$', ['aaaa', 'aaab']],
  ];
  try {
    return cases.every(([p, names]) => {
      const pattern = compile(p);
      const prog = programOf(pattern);
      return !!prog && names.every((name) => drain(pike(prog, name)) === pattern.matches(name));
    });
  } catch {
    return false;
  }
}

let vmAgrees: boolean | undefined;

/**
 * The match of `pattern` against the whole of `name`, in steps. `compile` compiles the probe's
 * patterns (the engine the caller loaded).
 */
export function* matchSteps(pattern: RE2JS, name: string, compile: (p: string) => RE2JS): Steps<boolean> {
  if (pattern.programSize() * (name.length + 1) <= STEPPED_ABOVE) return pattern.matches(name);
  vmAgrees ??= probe(compile);
  const prog = vmAgrees ? programOf(pattern) : undefined;
  if (!prog) return pattern.matches(name);
  return yield* pike(prog, name);
}

/** The VM's answer, whatever the pattern's cost (tests compare it with RE2JS's). */
export function vmMatches(pattern: RE2JS, name: string): boolean | undefined {
  const prog = programOf(pattern);
  return prog ? drain(pike(prog, name)) : undefined;
}
