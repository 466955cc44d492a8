import { createHash } from 'node:crypto';

/**
 * The hash of a ConfigMap's or Secret's content: SHA-256 over a canonical, unambiguous encoding.
 * Each entry is written as  <section> NUL <key length> : <key> <value length> : <value>, entries
 * sorted by section ("binaryData" < "data") then key, lengths in bytes. No two different contents
 * share an encoding (Reloader's `k=v` join lets "a=b;c" and "a;b=c" collide). binaryData is hashed
 * as its base64 text, as the API returns it; Secret data likewise.
 */
export function contentHash(
  data: Readonly<Record<string, string>> | undefined,
  binaryData: Readonly<Record<string, string>> | undefined,
): string {
  const h = createHash('sha256');
  const write = (section: string, entries: Readonly<Record<string, string>> | undefined): void => {
    for (const key of Object.keys(entries ?? {}).sort()) {
      const value = Buffer.from(entries?.[key] ?? '', 'utf8');
      const k = Buffer.from(key, 'utf8');
      h.update(`${section}\0${k.length}:`).update(k).update(`${value.length}:`).update(value);
    }
  };
  write('binaryData', binaryData);
  write('data', data);
  return h.digest('hex');
}
