import { refKey, refOf, type KubeObject } from '../model/index.js';

export type Path = ReadonlyArray<string | number>;

/**
 * A string a chart generates at random (randAlphaNum, randNumeric, uuidv4, …): two renders of the
 * same inputs differ only in one run of characters between a fixed prefix and suffix. A live value
 * of that same shape is what an earlier render generated, and is kept; any other value is replaced.
 */
export interface RandomField {
  path: Path;
  prefix: string;
  suffix: string;
  /** Length of the generated run. */
  length: number;
  /** The characters it is made of. */
  alphabet: Alphabet;
  /** A Secret's `data` value: the shape is of the decoded text. */
  base64: boolean;
}

/** Broad on purpose: two samples of randAlphaNum may both happen to hold letters only. */
type Alphabet = 'alphanumeric' | 'hex' | 'printable';

const ALPHABETS: ReadonlyArray<[Alphabet, RegExp]> = [
  ['alphanumeric', /^[A-Za-z0-9]+$/],
  ['hex', /^[0-9a-fA-F-]+$/],
  ['printable', /^[\x20-\x7e]+$/],
];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The generated run of two different strings, or undefined when they differ in more than one run of equal length. */
function shapeOf(a: string, b: string): Omit<RandomField, 'path' | 'base64'> | undefined {
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  let s = 0;
  while (s < a.length - p && s < b.length - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
  const [midA, midB] = [a.slice(p, a.length - s), b.slice(p, b.length - s)];
  if (midA.length === 0 || midA.length !== midB.length) return undefined;
  const found = ALPHABETS.find(([, re]) => re.test(midA) && re.test(midB));
  if (!found) return undefined;
  // Characters the two samples share by chance at the edges of the run belong to it: the shape is the
  // same from one pair of renders to the next.
  const [alphabet, re] = found;
  while (p > 0 && re.test(a.charAt(p - 1))) p--;
  while (s > 0 && re.test(a.charAt(a.length - s))) s--;
  return { prefix: a.slice(0, p), suffix: a.slice(a.length - s), length: a.length - p - s, alphabet };
}

/** The value at a path of keys, or undefined. */
export const valueAt = (value: unknown, path: Path): unknown =>
  path.reduce<unknown>(
    (node, key) =>
      node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>)[key] : undefined,
    value,
  );

const decode = (v: string): string => Buffer.from(v, 'base64').toString('utf8');

/** Whether a value has the shape of what the chart generates there. */
export function hasShape(value: unknown, field: RandomField): boolean {
  if (typeof value !== 'string') return false;
  const text = field.base64 ? decode(value) : value;
  if (text.length !== field.prefix.length + field.length + field.suffix.length) return false;
  if (!text.startsWith(field.prefix) || !text.endsWith(field.suffix)) return false;
  const run = text.slice(field.prefix.length, text.length - field.suffix.length);
  const re = ALPHABETS.find(([name]) => name === field.alphabet)?.[1];
  return re !== undefined && re.test(run);
}

/**
 * The strings two renders of one object disagree on, each with its shape; undefined when they
 * disagree in any other way (a different structure, a number, a run that changes length): then
 * nothing of the object is taken as random, and Git's render is applied as it is.
 */
function differences(a: KubeObject, b: KubeObject): RandomField[] | undefined {
  const out: RandomField[] = [];
  const walk = (x: unknown, y: unknown, path: Path): boolean => {
    if (x === y) return true;
    if (typeof x === 'string' && typeof y === 'string') {
      const base64 = a.kind === 'Secret' && path.length === 2 && path[0] === 'data';
      const shape = base64 ? shapeOf(decode(x), decode(y)) : shapeOf(x, y);
      if (shape) out.push({ path, base64, ...shape });
      return shape !== undefined;
    }
    if (Array.isArray(x) && Array.isArray(y))
      return x.length === y.length && x.every((v, i) => walk(v, y[i], [...path, i]));
    if (isRecord(x) && isRecord(y)) {
      const keys = Object.keys(x);
      if (keys.length !== Object.keys(y).length || !keys.every((k) => Object.hasOwn(y, k))) return false;
      return keys.every((k) => walk(x[k], y[k], [...path, k]));
    }
    return false;
  };
  return walk(a, b, []) ? out : undefined;
}

/**
 * The random fields of each object of a render, found by a second render of the same inputs: by
 * object (refKey), the fields that differ as a generated run does. Objects that differ otherwise,
 * or that the second render does not have, get none.
 */
export function randomFields(first: readonly KubeObject[], second: readonly KubeObject[]): Map<string, RandomField[]> {
  const again = new Map(second.map((o) => [refKey(refOf(o)), o]));
  const found = new Map<string, RandomField[]>();
  for (const object of first) {
    const key = refKey(refOf(object));
    const other = again.get(key);
    const fields = other ? differences(object, other) : undefined;
    if (fields && fields.length > 0) found.set(key, fields);
  }
  return found;
}
