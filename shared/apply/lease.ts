import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { TidegateError, type KubeObject } from '../model/index.js';
import type { Logger } from '../telemetry/index.js';
import { MANAGED_BY_LABEL, SYSTEM_NAMESPACE } from './owner.js';
import { STATE_OF_LABEL, ensureSystemNamespace, stateName } from './state.js';

/**
 * One writer per target: a coordination.k8s.io/v1 Lease in tidegate-system, taken before a
 * target's state is read and held (renewed) until it is written, by every path that writes it.
 */
export interface LeaseOptions {
  /** Who holds it, for the others to read: a Lambda request id, user@host for the CLI. */
  holder: string;
  /** How long to wait for a lease someone else holds before giving up with LeaseBusyError. */
  waitMs: number;
  /** A holder that stops renewing for this long is taken to be dead, and its lease is taken over. */
  durationSeconds?: number;
  signal?: AbortSignal | undefined;
  logger?: Logger | undefined;
}

export const DEFAULT_LEASE_SECONDS = 60;

/** Someone else is changing this target; the caller tries again later (the queue) or says who (CLI). */
export class LeaseBusyError extends TidegateError {
  constructor(readonly target: string, readonly holder: string, readonly since: string) {
    super('LeaseBusy', `target ${target} is being changed by ${holder} since ${since}; try again when it is done`);
  }
}

/** The lease was taken over (this holder stopped renewing for longer than its duration): stop writing. */
export class LeaseLostError extends TidegateError {
  constructor(target: string, holder: string) {
    super('LeaseLost', `lost the lease of target ${target} to ${holder}; nothing more is written`);
  }
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

const specOf = (lease: KubeObject): LeaseSpec => (lease['spec'] ?? {}) as LeaseSpec;

/** MicroTime: RFC 3339 with six fraction digits. */
const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/** Free (released or never renewed) or expired: its holder stopped renewing more than its duration ago. */
export function isExpired(spec: LeaseSpec, now: Date): boolean {
  if (!spec.holderIdentity) return true;
  const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
  if (Number.isNaN(renewed)) return true;
  return renewed + (spec.leaseDurationSeconds ?? DEFAULT_LEASE_SECONDS) * 1000 < now.getTime();
}

export interface HeldLease {
  /** Aborts when the lease is lost: whoever holds it must stop writing. */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

function leaseObject(target: string, holder: string, duration: number, spec: LeaseSpec, resourceVersion?: string): KubeObject {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: stateName(target),
      namespace: SYSTEM_NAMESPACE,
      labels: { [MANAGED_BY_LABEL]: 'tidegate', [STATE_OF_LABEL]: target },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    spec: { ...spec, holderIdentity: holder, leaseDurationSeconds: duration },
  };
}

const conflict = (err: unknown): boolean => err instanceof KubeApiError && err.isConflict;

/** One try: the lease, now ours; or the lease as another holds it. */
async function tryAcquire(client: KubeClient, target: string, holder: string, duration: number, signal?: AbortSignal): Promise<{ mine: KubeObject } | { theirs: KubeObject | undefined }> {
  const now = microTime(new Date());
  const fresh = leaseObject(target, holder, duration, { acquireTime: now, renewTime: now, leaseTransitions: 0 });
  try {
    return { mine: await client.create(fresh, signal) };
  } catch (err) {
    if (err instanceof KubeApiError && err.isNotFound) {
      await ensureSystemNamespace(client, signal);
      return { mine: await client.create(fresh, signal) };
    }
    if (!conflict(err)) throw err;
  }
  const existing = await client.get('coordination.k8s.io/v1', 'Lease', SYSTEM_NAMESPACE, stateName(target), signal);
  if (!existing) return { theirs: undefined }; // released in between: try again at once
  const spec = specOf(existing);
  if (!isExpired(spec, new Date())) return { theirs: existing };
  const takeover = leaseObject(target, holder, duration, { acquireTime: now, renewTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }, existing.metadata.resourceVersion);
  try {
    return { mine: await client.replace(takeover, signal) };
  } catch (err) {
    if (conflict(err) || (err instanceof KubeApiError && err.isNotFound)) return { theirs: undefined };
    throw err;
  }
}

/**
 * Takes a target's lease, waiting up to `waitMs` while another holder has it. The identity is
 * made unique per acquisition (`<holder>#<random>`), so two writers in one process never share it.
 * The lease is renewed every third of its duration until released.
 */
export async function acquireLease(client: KubeClient, target: string, opts: LeaseOptions): Promise<HeldLease> {
  const duration = opts.durationSeconds ?? DEFAULT_LEASE_SECONDS;
  const holder = `${opts.holder}#${randomBytes(3).toString('hex')}`;
  if (!client.resourceFor('coordination.k8s.io/v1', 'Lease')) await client.discover(opts.signal);
  const deadline = Date.now() + opts.waitMs;
  let current: KubeObject | undefined;
  for (let delay = 200; ; delay = Math.min(delay * 2, 2_000)) {
    const got = await tryAcquire(client, target, holder, duration, opts.signal);
    if ('mine' in got) {
      current = got.mine;
      break;
    }
    if (got.theirs === undefined) continue;
    const spec = specOf(got.theirs);
    const left = deadline - Date.now();
    if (left <= 0) throw new LeaseBusyError(target, spec.holderIdentity ?? 'unknown', spec.acquireTime ?? 'unknown');
    opts.logger?.info('waiting for the lease', { target, holder: spec.holderIdentity, since: spec.acquireTime });
    await sleep(Math.min(delay, left), undefined, opts.signal ? { signal: opts.signal } : {});
  }
  return holdLease(client, target, holder, duration, current, opts.logger);
}

function holdLease(client: KubeClient, target: string, holder: string, duration: number, acquired: KubeObject, logger?: Logger): HeldLease {
  const lost = new AbortController();
  let current = acquired;
  let renewing: Promise<void> = Promise.resolve();
  const renew = async (): Promise<void> => {
    const spec = specOf(current);
    try {
      current = await client.replace(leaseObject(target, holder, duration, { ...spec, renewTime: microTime(new Date()) }, current.metadata.resourceVersion));
    } catch (err) {
      const latest = conflict(err) ? await client.get('coordination.k8s.io/v1', 'Lease', SYSTEM_NAMESPACE, stateName(target)).catch(() => undefined) : undefined;
      const other = latest ? specOf(latest).holderIdentity : undefined;
      if (conflict(err) || isExpired(spec, new Date())) {
        lost.abort(new LeaseLostError(target, other ?? 'another writer'));
        return;
      }
      logger?.warn('lease not renewed; trying again', { target, error: err instanceof Error ? err.message : String(err) });
    }
  };
  const timer = setInterval(() => {
    renewing = renewing.then(renew).catch(() => undefined);
  }, (duration * 1000) / 3);
  timer.unref();
  return {
    lost: lost.signal,
    release: async () => {
      clearInterval(timer);
      await renewing;
      if (lost.signal.aborted) return;
      // Deleted only if still as we left it; a lease that cannot be released expires on its own.
      const ref = { group: 'coordination.k8s.io', kind: 'Lease', namespace: SYSTEM_NAMESPACE, name: stateName(target), apiVersion: 'coordination.k8s.io/v1' };
      const resourceVersion = current.metadata.resourceVersion;
      await client.delete(ref, { ...(resourceVersion ? { resourceVersion } : {}) }).catch((err: unknown) => logger?.warn('lease not released; it expires on its own', { target, error: err instanceof Error ? err.message : String(err) }));
    },
  };
}

/**
 * Runs `fn` holding a target's lease. Its signal aborts when the caller's does or the lease is
 * lost; `lost` alone says whether writing is still allowed (after the caller's deadline, a short
 * final write of the state still is).
 */
export async function withLease<T>(client: KubeClient, target: string, opts: LeaseOptions, fn: (signal: AbortSignal, lost: AbortSignal) => Promise<T>): Promise<T> {
  const lease = await acquireLease(client, target, opts);
  try {
    return await fn(opts.signal ? AbortSignal.any([opts.signal, lease.lost]) : lease.lost, lease.lost);
  } finally {
    await lease.release();
  }
}
