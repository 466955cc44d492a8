import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { RELOADER as R, loadPatternEngine, reloadDecision, shouldReload } from './annotations.js';
import fc from 'fast-check';
import { RE2JS } from 're2js';
import { STEPPED_ABOVE, drain, matchSteps, vmMatches, type Steps } from './matcher.js';

const compile = (p: string): RE2JS => RE2JS.compile(p);
const costly = (last: string): string => `${'(?:x?){253}'.repeat(40)}${last}`;
const LONG = `${'x'.repeat(240)}-a`;

/** Runs steps to the end, counting them. */
function count<T>(steps: Steps<T>): { value: T; steps: number } {
  let n = 0;
  for (;;) {
    const s = steps.next();
    if (s.done) return { value: s.value, steps: n };
    n++;
  }
}

// The stepped VM must give RE2JS's answer for every pattern a workload can write: whole-name
// match, anchors and word boundaries, case folding, Unicode classes, newlines.
describe('stepped matching gives RE2JS answers', () => {
  it.each<[string, string[]]>([
    ['', ['', 'a']],
    ['app-config', ['app-config', 'app-config-v2', 'my-app-config']],
    ['app-config-.*', ['app-config-', 'app-config-v2', 'app-confi']],
    ['a|b*c', ['a', 'bbc', 'c', 'ab', '']],
    ['(?i)aB[c-e]+', ['AbCDe', 'abf', 'ab', 'ABC']],
    ['(?i)straße', ['STRASSE', 'Straße', 'STRAẞE']],
    ['^db$', ['db', 'db2']],
    ['\\Adb\\z', ['db', 'db\n']],
    ['(?m)^a$\\n^b$', ['a\nb', 'ab']],
    ['\\bx\\B.*\\b', ['xyz', 'x-y', 'x', 'x-']],
    ['.*\\b-\\b.*', ['a-b', '-b', 'a-']],
    ['(?s).x.', ['\nxy', 'axb', 'x']],
    ['.x.', ['\nxy', 'axb']],
    ['[^a]?\\pL{2}', ['ééé', 'aé', 'zz', '1zz']],
    ['[[:alpha:]]+[[:digit:]]*', ['abc123', '123']],
    ['\\p{Greek}+', ['αβγ', 'abc']],
    ['(a+)+$', ['aaaa', 'aaab']],
    ['x*?y??', ['xxx', 'xxy', 'y', '']],
    ['(?:ab){2,3}', ['abab', 'ababab', 'ab', 'abababab']],
    ['😀+.', ['😀😀a', '😀', 'a']],
    [costly('y'), [LONG, `${'x'.repeat(200)}y`, 'y', '']],
    [`${'(?:x?){253}'.repeat(40)}-a`, [LONG, '-a', 'x-a']],
    ['(?:.?|-){253}'.repeat(39), [LONG, '']],
  ])('%s', (pattern, names) => {
    const p = compile(pattern);
    for (const name of names) {
      const re2js = p.matches(name);
      expect({ name, vm: vmMatches(p, name) }).toEqual({ name, vm: re2js });
      expect({ name, stepped: drain(matchSteps(p, name, compile)) }).toEqual({ name, stepped: re2js });
    }
  });

  it('random patterns against random names (fast-check)', () => {
    const atom = fc.constantFrom(
      'a',
      'b',
      '-',
      '\\.',
      '.',
      '[ab]',
      '[^a]',
      '\\w',
      '\\d',
      '\\pL',
      '(?i:a)',
      '\\b',
      '\\B',
      '^',
      '$',
      '(?m:^)',
      '(?m:$)',
      '\\n',
    );
    const regex: fc.Arbitrary<string> = fc.letrec<{ re: string }>((tie) => ({
      re: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        atom,
        fc.tuple(tie('re'), tie('re')).map(([a, b]) => `${a}${b}`),
        fc.tuple(tie('re'), tie('re')).map(([a, b]) => `(?:${a}|${b})`),
        fc.tuple(tie('re'), fc.constantFrom('*', '+', '?', '*?', '{2}', '{1,3}')).map(([a, op]) => `(?:${a})${op}`),
        tie('re').map((a) => `(${a})`),
      ),
    })).re;
    const name = fc.string({ unit: fc.constantFrom('a', 'b', 'A', '-', '.', '_', '1', '\n', 'é'), maxLength: 12 });
    fc.assert(
      fc.property(regex, fc.array(name, { minLength: 1, maxLength: 5 }), (pattern, names) => {
        const p = compile(pattern);
        for (const n of names) expect({ pattern, n, vm: vmMatches(p, n) }).toEqual({ pattern, n, vm: p.matches(n) });
      }),
      { numRuns: 2000 },
    );
  });

  it('a costly match runs one step per character of the name (until no thread is left); a cheap one at once', () => {
    const heavy = compile(costly('y'));
    expect(heavy.programSize() * (LONG.length + 1)).toBeGreaterThan(STEPPED_ABOVE);
    const stepped = count(matchSteps(heavy, LONG, compile));
    expect(stepped).toEqual({ value: false, steps: 240 }); // one per x; then "-" ends every thread
    expect(count(matchSteps(compile('x+-a'), LONG, compile))).toEqual({ value: true, steps: 0 });
  });
});

describe('reloadDecision: shouldReload in steps', () => {
  beforeAll(() => loadPatternEngine());
  const source = { kind: 'ConfigMap' as const, name: LONG, annotations: {} };

  it('gives the same decision as shouldReload, pausing between compiles and between steps of a costly match', () => {
    const ann = { [R.configmapReload]: [costly('y'), costly('z'), 'x+-a'].join(',') };
    const stepped = count(reloadDecision(source, ann, {}));
    expect(stepped.value).toEqual(shouldReload(source, ann, {}));
    expect(stepped.value).toMatchObject({ reload: true, auto: false });
    expect(stepped.steps).toBeGreaterThanOrEqual(3 + 2 * 240); // each compile, each character of two costly matches
  });

  it("a workload's budget is charged for the time spent in steps, not the time paused between them", async () => {
    const ann = { [R.configmapReload]: [costly('y'), 'x+-a'].join(',') };
    const budget = { leftMs: 1000 };
    const steps = reloadDecision(source, ann, {}, budget);
    let paused = 0;
    const began = performance.now();
    for (let s = steps.next(); !s.done; s = steps.next()) {
      const t = performance.now();
      await sleep(1);
      paused += performance.now() - t;
    }
    const working = performance.now() - began - paused;
    expect(paused).toBeGreaterThan(200);
    expect(1000 - budget.leftMs).toBeLessThanOrEqual(working + 1);
  });

  it('past its budget, a workload is refused as too costly, with the same message as before', () => {
    const ann = { [R.configmapReload]: [costly('y'), 'x+-a'].join(',') };
    expect(() => shouldReload(source, ann, {}, { leftMs: 1 })).toThrow(
      'configmap.reloader.stakater.com/reload: matching its patterns took more than 1000 ms in this pass',
    );
  });
});
