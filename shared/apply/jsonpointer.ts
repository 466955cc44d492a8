/** Removes the value at a JSON pointer (RFC 6901) from a copy-on-write object; missing paths are ignored. */
export function removePointer<T>(value: T, pointer: string): T {
  const keys = pointer
    .split('/')
    .slice(1)
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  const remove = (node: unknown, i: number): unknown => {
    const key = keys[i];
    if (key === undefined || node === null || typeof node !== 'object') return node;
    if (Array.isArray(node)) {
      const idx = Number(key);
      if (!Number.isInteger(idx) || idx < 0 || idx >= node.length) return node;
      return i === keys.length - 1
        ? node.filter((_, j) => j !== idx)
        : node.map((v, j) => (j === idx ? remove(v, i + 1) : v));
    }
    const record = node as Record<string, unknown>;
    if (!(key in record)) return node;
    if (i === keys.length - 1) {
      const { [key]: _removed, ...rest } = record;
      return rest;
    }
    return { ...record, [key]: remove(record[key], i + 1) };
  };
  return remove(value, 0) as T;
}

const keysOf = (pointer: string): string[] =>
  pointer
    .split('/')
    .slice(1)
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The value at a JSON pointer, or undefined. */
export function getPointer(value: unknown, pointer: string): unknown {
  let node = value;
  for (const key of keysOf(pointer)) {
    if (Array.isArray(node)) node = node[Number(key)];
    else if (isRecord(node)) node = node[key];
    else return undefined;
  }
  return node;
}

/** A copy of value with `v` at an existing JSON pointer's parent (copy-on-write); unchanged when the parent is missing. */
export function setPointer<T>(value: T, pointer: string, v: unknown): T {
  const keys = keysOf(pointer);
  const set = (node: unknown, i: number): unknown => {
    const key = keys[i];
    if (key === undefined) return v;
    if (Array.isArray(node)) {
      const idx = Number(key);
      return Number.isInteger(idx) && idx >= 0 && idx < node.length
        ? node.map((x, j) => (j === idx ? set(x, i + 1) : x))
        : node;
    }
    if (!isRecord(node) || (i < keys.length - 1 && !(key in node))) return node;
    return { ...node, [key]: set(node[key], i + 1) };
  };
  return set(value, 0) as T;
}
