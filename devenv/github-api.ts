import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { errorMessage } from '../shared/model/index.js';

/**
 * A local GitHub REST API for tests, driven by GitHub's own OpenAPI description
 * (@octokit/openapi): requests are routed by the description's paths, their bodies and query
 * parameters are validated against its schemas (422 as GitHub answers), and every response the
 * server gives is validated against the description's response schema for that status. Objects
 * are built from the description's examples, with the state a test creates. A response that
 * would not match GitHub's schema, or a call to an operation this server does not serve, is
 * recorded in `violations` (and answered 500 / 404), so a test can assert there were none.
 */

type Json = Record<string, unknown>;
interface Operation {
  operationId: string;
  method: string;
  template: string;
  pattern: RegExp;
  names: string[];
  op: Json;
}

export interface ApiRequest {
  operationId: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Json;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  /** Headers besides the content type (a Link header for the next page). */
  headers?: Record<string, string>;
}

export type Handler = (req: ApiRequest) => ApiResponse | Promise<ApiResponse>;

interface Spec {
  paths: Record<string, Record<string, Json>>;
  components: { examples: Record<string, { value: unknown }> };
}

let loaded: { spec: Spec; ajv: Ajv; operations: Operation[] } | undefined;
const compiled = new Map<string, ValidateFunction>();

const pointer = (...parts: string[]): string =>
  parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

/**
 * OpenAPI 3.0 `nullable: true` on a schema without `type` (GitHub's installation `account`, …) is
 * not valid for Ajv: read it as "this schema, or null".
 */
function untypedNullables(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(untypedNullables);
  if (node === null || typeof node !== 'object') return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, untypedNullables(v)]));
  if (out['nullable'] !== true || 'type' in out) return out;
  const { nullable: _nullable, ...rest } = out;
  return { anyOf: [rest, { type: 'null' }] };
}

function load(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const file = createRequire(import.meta.url).resolve('@octokit/openapi/generated/api.github.com.json');
  const spec = untypedNullables(JSON.parse(readFileSync(file, 'utf8'))) as Spec;
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormatsModule as unknown as (a: Ajv) => void)(ajv);
  ajv.addFormat('repo.nwo', /^[^/]+\/[^/]+$/);
  ajv.addSchema(spec as unknown as Json, 'github');
  const operations: Operation[] = [];
  for (const [template, methods] of Object.entries(spec.paths)) {
    const names: string[] = [];
    const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    for (const [method, op] of Object.entries(methods)) {
      if (typeof op['operationId'] !== 'string') continue;
      operations.push({
        operationId: op['operationId'],
        method: method.toUpperCase(),
        template,
        pattern: new RegExp(`^${source}$`),
        names,
        op,
      });
    }
  }
  // Literal paths before templated ones, so /pulls/comments is not taken for /pulls/{pull_number}.
  operations.sort((a, b) => a.names.length - b.names.length);
  loaded = { spec, ajv, operations };
  return loaded;
}

function validator(ajv: Ajv, ref: string): ValidateFunction {
  let fn = compiled.get(ref);
  if (!fn) {
    fn = ajv.compile({ $ref: `github#/${ref}` });
    compiled.set(ref, fn);
  }
  return fn;
}

const errorText = (fn: ValidateFunction): string =>
  (fn.errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`)
    .join('; ');

/** An example from GitHub's description, deep-copied, e.g. example('pull-request'). */
export function example<T = Json>(name: string): T {
  const ex = load().spec.components.examples[name];
  if (!ex) throw new Error(`no example ${name} in GitHub's OpenAPI description`);
  return structuredClone(ex.value) as T;
}

/** GitHub's 422 body. */
export const validationFailed = (
  errors: Array<{ resource?: string; field?: string; code: string; message?: string }>,
  message = 'Validation Failed',
): ApiResponse => ({
  status: 422,
  body: { message, errors, documentation_url: 'https://docs.github.com/rest', status: '422' },
});

export const notFound = (): ApiResponse => ({
  status: 404,
  body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' },
});

export interface GitHubApiOptions {
  /** The token every request must carry (Authorization: token … or Bearer …), or a check of the Authorization header per operation. */
  token: string | ((authorization: string, operationId: string | undefined) => boolean);
  handlers: Record<string, Handler>;
}

export interface GitHubApiServer {
  url: string;
  /** Every call: operation, status. */
  calls: Array<{ operationId: string; method: string; path: string; status: number }>;
  /** Requests to operations not served, or responses that break GitHub's schema. */
  violations: string[];
  /** Runs `hook` before each call of an operation is handled (tests use it to line up races); returns the removal. */
  before(operationId: string, hook: () => Promise<void>): () => void;
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'x-github-media-type': 'github.v3; format=json',
  });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

/** Checks the query parameters the operation declares (enum, integer) and the JSON body against its schema. */
function validateRequest(ajv: Ajv, op: Operation, query: URLSearchParams, body: unknown): string | undefined {
  for (const p of (op.op['parameters'] as Json[] | undefined) ?? []) {
    const param = (typeof p['$ref'] === 'string' ? resolveRef(p['$ref']) : p) as {
      in?: string;
      name?: string;
      schema?: { enum?: string[]; type?: string };
    };
    if (param.in !== 'query' || !param.name) continue;
    const value = query.get(param.name);
    if (value === null) continue;
    if (param.schema?.enum && !param.schema.enum.includes(value))
      return `query ${param.name}: must be one of ${param.schema.enum.join(', ')}`;
    if (param.schema?.type === 'integer' && !/^\d+$/.test(value)) return `query ${param.name}: must be an integer`;
  }
  const content = (op.op['requestBody'] as { content?: Record<string, unknown> } | undefined)?.content;
  if (!content?.['application/json']) return undefined;
  const fn = validator(
    ajv,
    pointer('paths', op.template, op.method.toLowerCase(), 'requestBody', 'content', 'application/json', 'schema'),
  );
  return fn(body) ? undefined : `body ${errorText(fn)}`;
}

function resolveRef(ref: string): unknown {
  let node: unknown = load().spec;
  for (const part of ref.replace(/^#\//, '').split('/'))
    node = (node as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return node;
}

/** The description's response schema for a status, or undefined when it declares no JSON body. */
function responseSchemaRef(op: Operation, status: number): string | undefined | null {
  const responses = op.op['responses'] as Record<string, Json>;
  let response = responses[String(status)];
  if (!response) return null;
  if (typeof response['$ref'] === 'string') {
    const target = response['$ref'].replace(/^#\//, '');
    response = resolveRef(response['$ref']) as Json;
    return (response['content'] as Json | undefined)?.['application/json']
      ? `${target}/content/application~1json/schema`
      : undefined;
  }
  return (response['content'] as Json | undefined)?.['application/json']
    ? pointer(
        'paths',
        op.template,
        op.method.toLowerCase(),
        'responses',
        String(status),
        'content',
        'application/json',
        'schema',
      )
    : undefined;
}

export async function startGitHubApi(opts: GitHubApiOptions): Promise<GitHubApiServer> {
  const { ajv, operations } = load();
  const calls: GitHubApiServer['calls'] = [];
  const violations: string[] = [];
  const hooks = new Map<string, () => Promise<void>>();

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const op = operations.find((o) => o.method === method && o.pattern.test(url.pathname));
    const record = (status: number): void => {
      calls.push({ operationId: op?.operationId ?? '(unknown)', method, path: url.pathname, status });
    };
    const auth = req.headers.authorization ?? '';
    const allowed =
      typeof opts.token === 'function'
        ? opts.token(auth, op?.operationId)
        : auth === `token ${opts.token}` || auth === `Bearer ${opts.token}`;
    if (!allowed) {
      record(401);
      return send(res, 401, {
        message: 'Bad credentials',
        documentation_url: 'https://docs.github.com/rest',
        status: '401',
      });
    }
    const handler = op && opts.handlers[op.operationId];
    if (!op || !handler) {
      violations.push(`not served: ${method} ${url.pathname}${op ? ` (${op.operationId})` : ''}`);
      record(404);
      return send(res, 404, notFound().body);
    }
    const raw = await readBody(req);
    let body: Json;
    try {
      body = raw ? (JSON.parse(raw) as Json) : {};
    } catch {
      record(400);
      return send(res, 400, {
        message: 'Problems parsing JSON',
        documentation_url: 'https://docs.github.com/rest',
        status: '400',
      });
    }
    const invalid = validateRequest(ajv, op, url.searchParams, body);
    if (invalid) {
      record(422);
      return send(res, 422, validationFailed([{ code: 'invalid', message: invalid }], 'Invalid request').body);
    }
    const params = Object.fromEntries(
      op.names.map((n, i) => [n, decodeURIComponent(op.pattern.exec(url.pathname)?.[i + 1] ?? '')]),
    );
    await hooks.get(op.operationId)?.();
    const out = await handler({ operationId: op.operationId, params, query: url.searchParams, body });
    const schemaRef = responseSchemaRef(op, out.status);
    if (schemaRef === null) violations.push(`${op.operationId}: GitHub does not answer ${out.status}`);
    else if (schemaRef !== undefined) {
      const fn = validator(ajv, schemaRef);
      if (!fn(out.body)) {
        const violation = `${op.operationId} ${out.status}: response breaks GitHub's schema: ${errorText(fn)}`;
        violations.push(violation);
        record(500);
        return send(res, 500, { message: `test server: ${violation}` });
      }
    }
    record(out.status);
    send(res, out.status, out.body, out.headers);
  };

  const server = createServer((req, res) => {
    serve(req, res).catch((err: unknown) => {
      violations.push(`handler failed: ${errorMessage(err)}`);
      if (!res.headersSent) send(res, 500, { message: 'test server failed' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    violations,
    before: (operationId, hook) => {
      hooks.set(operationId, hook);
      return () => hooks.delete(operationId);
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
