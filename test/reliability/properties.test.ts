import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { canonicalJson } from '../../shared/apply/index.js';
import { orderTargets, parseConfig } from '../../shared/config/index.js';
import { ConfigError } from '../../shared/config/load.js';
import type { LatestImage } from '../../shared/images/index.js';
import { rewriteMarkers } from '../../shared/images/markers.js';
import { contentHash } from '../../shared/reload/hash.js';
import { routeGithubEvent, verifyGithub, type HttpRequest } from '../../shared/triggers/index.js';

/** Property-based tests (fast-check): parsers and encoders hold their promises for any input, not just the examples. */

const sign = (secret: string, body: string): string =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const request = (body: string, headers: Record<string, string>): HttpRequest => ({
  method: 'POST',
  path: '/webhooks/github',
  headers,
  body,
});
const githubHeaders = (body: string, secret: string): Record<string, string> => ({
  'content-type': 'application/json',
  'x-github-event': 'push',
  'x-github-delivery': 'd-1',
  'x-hub-signature-256': sign(secret, body),
});
const secret = fc.string({ minLength: 1, maxLength: 40 });
const FAILURE_STATUSES = [400, 401, 405, 413, 415];

describe('webhook parsing', () => {
  it('a correctly signed body is accepted exactly when it is JSON, and yields that JSON', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json(), fc.string()), secret, async (body, key) => {
        const out = await verifyGithub(request(body, githubHeaders(body, key)), key);
        let json: unknown;
        let isJson = true;
        try {
          json = JSON.parse(body);
        } catch {
          isJson = false;
        }
        expect(out.ok).toBe(isJson);
        if (out.ok) expect(out.delivery.payload).toEqual(json);
        else
          expect(out.response).toEqual({
            status: 400,
            body: { message: body === '' ? 'body is empty' : 'body is not valid JSON' },
          });
      }),
    );
  });

  it('any change to the body or the signature is refused with 401', async () => {
    await fc.assert(
      fc.asyncProperty(fc.json(), secret, fc.nat(), fc.boolean(), async (body, key, at, flipSignature) => {
        const headers = githubHeaders(body, key);
        const sig = headers['x-hub-signature-256'] ?? '';
        let tampered = body;
        if (flipSignature) {
          const i = 7 + (at % 64); // a hex digit after "sha256="
          headers['x-hub-signature-256'] = `${sig.slice(0, i)}${sig[i] === '0' ? '1' : '0'}${sig.slice(i + 1)}`;
        } else {
          const i = at % (body.length + 1);
          tampered = `${body.slice(0, i)} ${body.slice(i)}`; // one byte more
        }
        const out = await verifyGithub(request(tampered, headers), key);
        expect(out.ok ? 'accepted' : out.response).toEqual({
          status: 401,
          body: { message: 'signature does not match' },
        });
      }),
    );
  });

  it('arbitrary headers and bodies never throw, and are refused with a 4xx unless correctly signed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom(
            'content-type',
            'x-hub-signature-256',
            'x-hub-signature',
            'x-github-event',
            'x-github-delivery',
            'x-other',
          ),
          fc.string(),
        ),
        fc.string(),
        async (headers, body) => {
          const out = await verifyGithub(request(body, headers), 'the-secret');
          if (!out.ok) expect(FAILURE_STATUSES).toContain(out.response.status);
          else expect(headers['x-hub-signature-256']).toBe(sign('the-secret', body));
        },
      ),
    );
  });

  it('any verified payload routes to a reply, never an exception; only a well-formed push is queued', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('push', 'ping', 'pull_request', 'star', 'nonsense'),
        fc.jsonValue(),
        (event, payload) => {
          const routed = routeGithubEvent({ id: 'd', event, payload }, [
            { url: 'https://github.com/acme/gitops.git', branch: 'main' },
          ]);
          expect([200, 202, 400]).toContain(routed.response.status);
          expect(routed.messages).toEqual([]); // random payloads never name the tracked repository
        },
      ),
    );
  });
});

describe('config loading', () => {
  it('any text either parses or fails with a ConfigError, never another exception', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => stringify(v)),
          fc.constantFrom(
            'a: &a [*a]',
            '*!',
            'x: !!binary zz',
            '{[',
            'targets: [{name: a, cluster: c, dependsOn: [a]}]',
          ),
        ),
        (text) => {
          try {
            parseConfig(text);
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            expect((err as ConfigError).message).toMatch(/^tidegate\.yaml/);
          }
        },
      ),
    );
  });

  const dnsLabel = fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/);
  it('a valid acyclic target list parses, and dependencies always come first', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(dnsLabel, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (names, picks) => {
          // Each target may depend only on targets declared before it (acyclic by construction), then shuffled.
          const deps = new Map(names.map((n) => [n, new Set<string>()]));
          picks.forEach((p, i) => {
            const from = names[(i % (names.length - 1 || 1)) + 1];
            const to = names[p % ((i % (names.length - 1 || 1)) + 1)];
            if (from && to && from !== to) deps.get(from)?.add(to);
          });
          const targets = [...names]
            .reverse()
            .map((name) => ({ name, cluster: 'c', dependsOn: [...(deps.get(name) ?? [])] }));
          const config = parseConfig(stringify({ targets }));
          const order = orderTargets(config.targets).map((t) => t.name);
          for (const t of config.targets)
            for (const d of t.dependsOn) expect(order.indexOf(d)).toBeLessThan(order.indexOf(t.name));
        },
      ),
    );
  });
});

describe('marker rewriting', () => {
  const line = fc.string({ maxLength: 60 }).filter((s) => !s.includes('\n') && !s.includes('$imagepolicy'));
  const tag = fc.stringMatching(/^[0-9a-z][0-9a-z._-]{0,15}$/);
  const image = (t: string): LatestImage => ({ name: 'ghcr.io/acme/app', tag: t });

  it('a file without markers comes back byte for byte', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), fc.boolean(), (lines, crlf) => {
        const text = lines.join(crlf ? '\r\n' : '\n');
        expect(rewriteMarkers(text, () => image('9.9.9'))).toEqual({ text, edits: [] });
      }),
    );
  });

  it('only marked lines change, only in their value, and a second rewrite changes nothing', () => {
    const marked = fc
      .tuple(
        fc.stringMatching(/^ {0,8}(image|newTag|tag): $/),
        tag,
        fc.constantFrom('', ':tag'),
        fc.constantFrom('', '  '),
      )
      .map(([head, value, form, tail]) => ({
        head,
        value: form === ':tag' ? value : `ghcr.io/acme/app:${value}`,
        marker: `{"$imagepolicy": "flux-system:app${form}"}`,
        tail,
      }));
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            line.map((text) => ({ text })),
            marked,
          ),
          { maxLength: 30 },
        ),
        tag,
        (items, chosen) => {
          const lines = items.map((it) => ('text' in it ? it.text : `${it.head}${it.value} # ${it.marker}${it.tail}`));
          const text = lines.join('\n');
          const out = rewriteMarkers(text, (m) => (m.policy === 'app' ? image(chosen) : undefined));
          const after = out.text.split('\n');
          expect(after).toHaveLength(text.split('\n').length);
          items.forEach((it, i) => {
            if ('text' in it) expect(after[i]).toBe(lines[i]);
            else
              expect(after[i]).toBe(
                `${it.head}${it.value.includes(':') ? `ghcr.io/acme/app:${chosen}` : chosen} # ${it.marker}${it.tail}`,
              );
          });
          expect(rewriteMarkers(out.text, (m) => (m.policy === 'app' ? image(chosen) : undefined)).edits).toEqual([]);
        },
      ),
    );
  });
});

describe('hashing', () => {
  const record = fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 6 });

  it('the content hash does not depend on key order', () => {
    fc.assert(
      fc.property(record, record, (data, binary) => {
        const reversed = (r: Record<string, string>) => Object.fromEntries(Object.entries(r).reverse());
        expect(contentHash(reversed(data), reversed(binary))).toBe(contentHash(data, binary));
      }),
    );
  });

  it('different contents never share a hash (no k=v join ambiguity)', () => {
    fc.assert(
      fc.property(record, record, (a, b) => {
        const same = canonicalJson(a) === canonicalJson(b);
        expect(contentHash(a, undefined) === contentHash(b, undefined)).toBe(same);
        expect(contentHash(a, undefined) === contentHash(undefined, a)).toBe(Object.keys(a).length === 0);
      }),
    );
  });

  it('canonical JSON is one encoding per value: key order is irrelevant and it round-trips', () => {
    const shuffle = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(shuffle)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, shuffle(x)]),
            )
          : v;
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(shuffle(value))).toBe(text);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
    );
  });
});
