import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { errorMessage, TidegateError, type KubeObject } from '../model/index.js';
import type { Logger } from '../telemetry/index.js';
import { MANAGED_BY_LABEL, SYSTEM_NAMESPACE } from '../apply/index.js';
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
  /**
   * How far the clocks of two writers may differ: another holder's lease is taken over only this
   * long after it expired by its own renewTime (a clock ahead of the holder's must not steal it).
   */
  clockSkewSeconds?: number;
  signal?: AbortSignal | undefined;
  logger?: Logger | undefined;
}

export const DEFAULT_LEASE_SECONDS = 60;
export const DEFAULT_CLOCK_SKEW_SECONDS = 120;

/** Someone else is changing this target; the caller tries again later (the queue) or says who (CLI). */
export class LeaseBusyError extends TidegateError {
  constructor(
    readonly target: string,
    readonly holder: string,
    readonly since: string,
  ) {
    super('LeaseBusy', `target ${target} is being changed by ${holder} since ${since}; try again when it is done`, {
      transient: true,
    });
  }
}

/** The lease was taken over, or could not be renewed before it ran out: stop writing. */
export class LeaseLostError extends TidegateError {
  constructor(target: string, why: string) {
    super('LeaseLost', `lost the lease of target ${target} (${why}); nothing more is written`, { transient: true });
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

/**
 * Free (released, or no holder), or expired: its holder stopped renewing more than its duration
 * ago, by its renewTime, plus the clock skew allowed between writers.
 */
export function isExpired(spec: LeaseSpec, now: Date, clockSkewSeconds = DEFAULT_CLOCK_SKEW_SECONDS): boolean {
  if (!spec.holderIdentity) return true;
  const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
  if (Number.isNaN(renewed)) return true;
  return renewed + ((spec.leaseDurationSeconds ?? DEFAULT_LEASE_SECONDS) + clockSkewSeconds) * 1000 < now.getTime();
}

export interface HeldLease {
  /** Aborts when the lease is lost: whoever holds it must stop writing. */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

function leaseObject(
  target: string,
  holder: string,
  duration: number,
  spec: LeaseSpec,
  resourceVersion?: string,
): KubeObject {
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

const getLease = (client: KubeClient, target: string, signal?: AbortSignal): Promise<KubeObject | undefined> =>
  client.get('coordination.k8s.io/v1', 'Lease', SYSTEM_NAMESPACE, stateName(target), signal);

/** One try: the lease, now ours; or the lease as another holds it. */
async function tryAcquire(
  client: KubeClient,
  target: string,
  holder: string,
  opts: LeaseOptions,
): Promise<{ mine: KubeObject } | { theirs: KubeObject | undefined }> {
  const duration = opts.durationSeconds ?? DEFAULT_LEASE_SECONDS;
  const now = microTime(new Date());
  const fresh = leaseObject(target, holder, duration, { acquireTime: now, renewTime: now, leaseTransitions: 0 });
  try {
    return { mine: await client.create(fresh, opts.signal) };
  } catch (err) {
    if (err instanceof KubeApiError && err.isNotFound) {
      await ensureSystemNamespace(client, opts.signal);
      return { mine: await client.create(fresh, opts.signal) };
    }
    if (!conflict(err)) throw err;
  }
  const existing = await getLease(client, target, opts.signal);
  if (!existing) return { theirs: undefined }; // released in between: try again at once
  const spec = specOf(existing);
  // Our own create, whose answer was lost and which was sent again: it is ours.
  if (spec.holderIdentity === holder) return { mine: existing };
  if (!isExpired(spec, new Date(), opts.clockSkewSeconds)) return { theirs: existing };
  return takeOver(client, target, holder, existing, opts);
}

/** Takes over an expired lease (its holder is taken to be dead), unless someone else did first. */
async function takeOver(
  client: KubeClient,
  target: string,
  holder: string,
  expired: KubeObject,
  opts: LeaseOptions,
): Promise<{ mine: KubeObject } | { theirs: undefined }> {
  const now = microTime(new Date());
  const spec = specOf(expired);
  const takeover = leaseObject(
    target,
    holder,
    opts.durationSeconds ?? DEFAULT_LEASE_SECONDS,
    { acquireTime: now, renewTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 },
    expired.metadata.resourceVersion,
  );
  try {
    return { mine: await client.replace(takeover, opts.signal) };
  } catch (err) {
    if (!conflict(err) && !(err instanceof KubeApiError && err.isNotFound)) throw err;
    const latest = await getLease(client, target, opts.signal);
    return latest && specOf(latest).holderIdentity === holder ? { mine: latest } : { theirs: undefined };
  }
}

/**
 * Takes a target's lease, waiting up to `waitMs` while another holder has it. The identity is
 * made unique per acquisition (`<holder>#<random>`), so two writers in one process never share it.
 * The lease is renewed every third of its duration until released.
 */
export async function acquireLease(client: KubeClient, target: string, opts: LeaseOptions): Promise<HeldLease> {
  const holder = `${opts.holder}#${randomBytes(3).toString('hex')}`;
  if (!client.resourceFor('coordination.k8s.io/v1', 'Lease')) await client.discover(opts.signal);
  const deadline = Date.now() + opts.waitMs;
  for (let delay = 200; ; delay = Math.min(delay * 2, 2_000)) {
    const got = await tryAcquire(client, target, holder, opts);
    const mine = 'mine' in got ? await fresh(client, target, holder, got.mine, opts) : undefined;
    if (mine) return holdLease(client, target, holder, mine, opts);
    if (!('theirs' in got) || got.theirs === undefined) continue;
    const spec = specOf(got.theirs);
    const left = deadline - Date.now();
    if (left <= 0) throw new LeaseBusyError(target, spec.holderIdentity ?? 'unknown', spec.acquireTime ?? 'unknown');
    opts.logger?.info('waiting for the lease', { target, holder: spec.holderIdentity, since: spec.acquireTime });
    await sleep(Math.min(delay, left), undefined, opts.signal ? { signal: opts.signal } : {});
  }
}

/** Deletes the lease only while it is still ours (the last version we saw, or a newer one we wrote whose answer was lost). */
async function deleteOwnLease(client: KubeClient, target: string, holder: string, last: KubeObject): Promise<void> {
  const ref = {
    group: 'coordination.k8s.io',
    kind: 'Lease',
    namespace: SYSTEM_NAMESPACE,
    name: stateName(target),
    apiVersion: 'coordination.k8s.io/v1',
  };
  const signal = AbortSignal.timeout(3_000);
  for (
    let lease: KubeObject | undefined = last, tries = 0;
    lease && specOf(lease).holderIdentity === holder && tries < 3;
    tries++
  ) {
    const resourceVersion = lease.metadata.resourceVersion;
    try {
      await client.delete(ref, { ...(resourceVersion ? { resourceVersion } : {}), signal });
      return;
    } catch (err) {
      if (!conflict(err)) throw err;
      lease = await getLease(client, target, signal);
    }
  }
}

/** When this holder last renewed a lease, by its own clock (the renewTime it wrote). */
const renewedAt = (lease: KubeObject): number => Date.parse(specOf(lease).renewTime ?? '') || 0;

/**
 * A lease just acquired, renewed once more if acquiring it took a good part of its duration (a
 * create answered late, throttled retries): others judge it by the renewTime it carries. Undefined
 * when, meanwhile, someone else took it over.
 */
async function fresh(
  client: KubeClient,
  target: string,
  holder: string,
  lease: KubeObject,
  opts: LeaseOptions,
): Promise<KubeObject | undefined> {
  const duration = (opts.durationSeconds ?? DEFAULT_LEASE_SECONDS) * 1000;
  if (renewedAt(lease) + duration / 3 > Date.now()) return lease;
  try {
    return await client.replace(
      leaseObject(
        target,
        holder,
        duration / 1000,
        { ...specOf(lease), renewTime: microTime(new Date()) },
        lease.metadata.resourceVersion,
      ),
      opts.signal,
    );
  } catch (err) {
    if (!conflict(err) && !(err instanceof KubeApiError && err.isNotFound)) throw err;
    const latest = await getLease(client, target, opts.signal);
    return latest && specOf(latest).holderIdentity === holder && renewedAt(latest) + duration / 3 > Date.now()
      ? latest
      : undefined;
  }
}

/**
 * Keeps a lease: renewed every third of its duration (one renewal at a time, each bounded by that
 * third). By this process's own clock the lease is valid until its duration has passed since the
 * last renewal was sent; then `lost` aborts, before any other writer may take it over (they wait
 * the duration plus the clock skew after the renewTime they read).
 */
function holdLease(
  client: KubeClient,
  target: string,
  holder: string,
  acquired: KubeObject,
  opts: LeaseOptions,
): HeldLease {
  const duration = (opts.durationSeconds ?? DEFAULT_LEASE_SECONDS) * 1000;
  const lost = new AbortController();
  const stopRenewing = new AbortController();
  let current = acquired;
  let validUntil = 0;
  let renewing: Promise<void> | undefined;
  let expiry: NodeJS.Timeout | undefined;
  // Valid until its duration has passed since the renewTime it carries (written by this holder's clock).
  const renewed = (lease: KubeObject): void => {
    current = lease;
    validUntil = renewedAt(lease) + duration;
    clearTimeout(expiry);
    expiry = setTimeout(
      () => lost.abort(new LeaseLostError(target, `not renewed within ${duration / 1000} s`)),
      Math.max(0, validUntil - Date.now()),
    );
    expiry.unref();
  };
  renewed(acquired);
  const renew = async (): Promise<void> => {
    const signal = AbortSignal.any([stopRenewing.signal, AbortSignal.timeout(Math.floor(duration / 3))]);
    try {
      renewed(
        await client.replace(
          leaseObject(
            target,
            holder,
            duration / 1000,
            { ...specOf(current), renewTime: microTime(new Date()) },
            current.metadata.resourceVersion,
          ),
          signal,
        ),
      );
    } catch (err) {
      if (stopRenewing.signal.aborted) return;
      if (!conflict(err)) {
        opts.logger?.warn('lease not renewed; trying again', {
          target,
          validForMs: validUntil - Date.now(),
          error: errorMessage(err),
        });
        return;
      }
      // A conflict: our own renewal whose answer was lost and was sent again, or another holder.
      const latest = await getLease(client, target, signal).catch(() => undefined);
      if (latest && specOf(latest).holderIdentity === holder) renewed(latest);
      else
        lost.abort(
          new LeaseLostError(
            target,
            `taken over by ${latest ? (specOf(latest).holderIdentity ?? 'nobody') : 'nobody (deleted)'}`,
          ),
        );
    }
  };
  const timer = setInterval(() => {
    if (renewing || lost.signal.aborted) return; // one renewal at a time
    renewing = renew()
      .catch(() => undefined)
      .finally(() => (renewing = undefined));
  }, duration / 3);
  timer.unref();
  return {
    lost: lost.signal,
    release: async () => {
      clearInterval(timer);
      clearTimeout(expiry);
      stopRenewing.abort();
      await renewing?.catch(() => undefined);
      if (lost.signal.aborted) return;
      lost.abort(new LeaseLostError(target, 'released'));
      await deleteOwnLease(client, target, holder, current).catch((err: unknown) =>
        opts.logger?.warn('lease not released; it expires on its own', { target, error: errorMessage(err) }),
      );
    },
  };
}

/**
 * Runs `fn` holding a target's lease. Its signal aborts when the caller's does or the lease is
 * lost; `lost` alone says whether writing is still allowed (after the caller's deadline, a short
 * final write of the state still is).
 */
export async function withLease<T>(
  client: KubeClient,
  target: string,
  opts: LeaseOptions,
  fn: (signal: AbortSignal, lost: AbortSignal) => Promise<T>,
): Promise<T> {
  const lease = await acquireLease(client, target, opts);
  try {
    return await fn(opts.signal ? AbortSignal.any([opts.signal, lease.lost]) : lease.lost, lease.lost);
  } finally {
    await lease.release();
  }
}
