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

/** A copy of `value` with `replacement` at a path of keys (objects and arrays copied on the way); a missing path is left alone. */
export function setAt<T>(value: T, path: ReadonlyArray<string | number>, replacement: unknown): T {
  const set = (node: unknown, i: number): unknown => {
    const key = path[i];
    if (key === undefined) return replacement;
    if (Array.isArray(node) && typeof key === 'number' && key < node.length)
      return node.map((v, j) => (j === key ? set(v, i + 1) : v));
    if (node !== null && typeof node === 'object' && !Array.isArray(node) && Object.hasOwn(node, key))
      return { ...(node as Record<string, unknown>), [key]: set((node as Record<string, unknown>)[key], i + 1) };
    return node;
  };
  return set(value, 0) as T;
}
