import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  LambdaInvocationError,
  functionDefinition,
  nodeForRuntime,
  receiveRecords,
  serverlessYml,
  startHandler,
  type HandlerSpec,
  type LambdaFunction,
} from '../../devenv/lambda.js';
import { deployedPath } from '../helpers/deployed.js';
import { uniqueName } from '../helpers/env.js';
import { BatchFailedError, awsConfig, createFifoQueue, deliverBatch } from '../helpers/lambda.js';

const root = new URL('../..', import.meta.url).pathname;
const fixture = join(root, 'test', 'fixtures', 'lambda-limits', 'handler.mjs');
const run = promisify(execFile);

/** The invocation's rejection (a LambdaInvocationError), or a failure when it was answered. */
async function rejection(p: Promise<unknown>): Promise<LambdaInvocationError> {
  const err = await p.then(
    (v) => new Error(`answered ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LambdaInvocationError);
  return err as LambdaInvocationError;
}

/** Whether a process still runs (a zombie waiting for its reaper does not). */
const running = (pid: number): boolean => {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
};

/**
 * The Lambda emulation (devenv/lambda.ts) gives a function the room Lambda gives it and no more:
 * the Node major of its runtime, its memory size (the resident memory of its process tree), its
 * timeout and its /tmp; an invocation over a limit is killed as Lambda kills it, its SQS batch is
 * not deleted, and the next invocation is a new process. A fixture handler asks for memory, time
 * and disk; the built bundles show they run on the runtime's Node within their limits.
 */
describe('a function has no more room than Lambda gives it (fixture handler)', () => {
  const started: LambdaFunction[] = [];
  const start = async (limits: HandlerSpec['limits']): Promise<LambdaFunction> => {
    const fn = await startHandler({ name: uniqueName('limits'), file: fixture, limits });
    started.push(fn);
    return fn;
  };
  afterEach(async () => {
    await Promise.all(started.splice(0).map((f) => f.stop()));
  });

  it("runs on the Node major of serverless.yml's runtime with the heap flags Lambda's runtime sets; /tmp is TMPDIR, HOME and TIDEGATE_CACHE", async () => {
    expect(serverlessYml().provider.runtime).toBe('nodejs22.x');
    const fn = await start({ memorySize: 256, timeout: 5 });
    expect(fn.runtime).toBe('nodejs22.x');
    const first = await fn.invoke<Record<string, unknown>>({ op: 'version' });
    expect(first['version']).toMatch(/^v22\./);
    expect(first['execArgv']).toEqual([
      '--expose-gc',
      '--max-http-header-size=81920',
      '--max-semi-space-size=12',
      '--max-old-space-size=231',
    ]);
    expect(first).toMatchObject({ tmpdir: fn.tmpDir, home: fn.tmpDir, cache: fn.tmpDir, memoryLimitInMB: '256' });
    expect(first['remainingMs']).toBeGreaterThan(4000);
    expect(fn.lastInvocation()).toMatchObject({ coldStart: true, nodeVersion: first['version'], pid: first['pid'] });
    await fn.invoke({ op: 'version' });
    const report = fn.lastInvocation();
    expect(report).toMatchObject({ coldStart: false, pid: first['pid'] });
    expect(report?.peakRssMiB).toBeGreaterThan(20);
    expect(report?.peakRssMiB).toBeLessThan(256);
    expect(fn.output()).toMatch(
      /REPORT RequestId: \S+\tDuration: [\d.]+ ms\tMemory Size: 256 MB\tMax Memory Used: \d+ MB/,
    );

    expect(() => nodeForRuntime('nodejs99.x')).toThrow(/needs Node 99: devenv\/paths.ts LAMBDA_NODE pins Node 22 only/);
    expect(() => nodeForRuntime('python3.12')).toThrow(/runs Node.js runtimes \(nodejsNN.x\) only/);
  });

  it('memory over the memory size in the process: the invocation is killed (signal: killed, the peak recorded); the next one is a new process and works', async () => {
    const fn = await start({ memorySize: 256, timeout: 20 });
    const { pid } = await fn.invoke<{ pid: number }>({ op: 'version' });
    expect(await fn.invoke({ op: 'allocate', mib: 120 })).toEqual({ allocated: 120 });
    expect(fn.lastInvocation()?.peakRssMiB).toBeGreaterThan(150);

    const err = await rejection(fn.invoke({ op: 'allocate', mib: 600, holdMs: 1000 }));
    expect(err.message).toMatch(
      /^RequestId: \S+ Error: Runtime exited with error: signal: killed \(the function's memory size was exceeded: its process tree had [\d.]+ MiB resident, over its memory size of 256 MB\)$/,
    );
    expect(err.errorType).toBe('Runtime.ExitError');
    expect(err.report).toMatchObject({ killed: 'memory', pid, error: err.message });
    expect(err.report.peakRssMiB).toBeGreaterThan(256);
    expect(err.report.peakRssMiB).toBeLessThan(600);
    expect(running(pid)).toBe(false);

    const again = await fn.invoke<{ pid: number; version: string }>({ op: 'version' });
    expect(again.pid).not.toBe(pid);
    expect(again.version).toMatch(/^v22\./);
    expect(fn.lastInvocation()).toMatchObject({ coldStart: true, pid: again.pid });
    expect(fn.lastInvocation()?.peakRssMiB).toBeLessThan(120); // what the killed process held is gone
  });

  it('memory over the memory size in a process the function spawned: the whole tree is killed, the child too', async () => {
    const fn = await start({ memorySize: 256, timeout: 20 });
    const err = await rejection(fn.invoke({ op: 'spawnAllocate', mib: 600 }));
    expect(err.message).toContain('Runtime exited with error: signal: killed');
    expect(err.report.killed).toBe('memory');
    expect(err.report.peakRssMiB).toBeGreaterThan(256);
    const child = Number(/spawned pid (\d+)/.exec(fn.output())?.[1]);
    expect(child).toBeGreaterThan(0);
    await expect.poll(() => running(child), { timeout: 5000 }).toBe(false);
    expect(await fn.invoke({ op: 'allocate', mib: 32 })).toEqual({ allocated: 32 });
    expect(fn.lastInvocation()?.coldStart).toBe(true);
  });

  it("the timeout: the invocation is killed at it with Lambda's message; the next one is a new process", async () => {
    const fn = await start({ memorySize: 128, timeout: 1 });
    const { pid } = await fn.invoke<{ pid: number }>({ op: 'sleep', ms: 10 });
    const err = await rejection(fn.invoke({ op: 'sleep', ms: 30_000 }));
    expect(err.message).toMatch(/^RequestId: \S+ Error: Task timed out after 1\.00 seconds$/);
    expect(err.errorType).toBe('Sandbox.Timedout');
    expect(err.report.killed).toBe('timeout');
    expect(err.report.durationMs).toBeGreaterThanOrEqual(1000);
    expect(err.report.durationMs).toBeLessThan(3000);
    expect(running(pid)).toBe(false);
    expect(await fn.invoke({ op: 'sleep', ms: 10 })).toEqual({ slept: 10 });
    expect(fn.lastInvocation()).toMatchObject({ coldStart: true });
    expect(fn.lastInvocation()?.pid).not.toBe(pid);
  });

  it('/tmp over its ephemeral storage (512 MiB): the invocation is killed with No space left on device; /tmp is kept for the next one, as Lambda keeps it', async () => {
    const fn = await start({ memorySize: 256, timeout: 60 });
    expect(fn.ephemeralStorageMiB).toBe(512);
    expect(await fn.invoke({ op: 'write', mib: 64, name: 'small' })).toEqual({ written: 64 });
    expect(fn.lastInvocation()?.peakTmpMiB).toBeGreaterThanOrEqual(64);

    const err = await rejection(fn.invoke({ op: 'write', mib: 1024, name: 'big' }));
    expect(err.message).toMatch(
      /^RequestId: \S+ Error: ENOSPC: No space left on device \(\/tmp held [\d.]+ MiB, over the function's ephemeral storage of 512 MiB; Lambda fails the write, the emulation kills the invocation\)$/,
    );
    expect(err.report.killed).toBe('disk');
    expect(err.report.peakTmpMiB).toBeGreaterThanOrEqual(512); // over 512, rounded for the report
    expect(err.report.peakTmpMiB).toBeLessThan(1024);

    const after = await fn.invoke<{ tmpdir: string }>({ op: 'version' });
    expect(readdirSync(after.tmpdir).sort()).toEqual(['big', 'small']);
    expect(fn.lastInvocation()).toMatchObject({ coldStart: true });
    expect(fn.lastInvocation()?.peakTmpMiB).toBeGreaterThanOrEqual(512); // not cleared, and not written to: not killed
    await fn.stop();
    expect(existsSync(fn.tmpDir)).toBe(false);
  });

  it('a killed invocation of an SQS batch deletes none of it: every message comes back after the visibility timeout', async () => {
    const fn = await start({ memorySize: 128, timeout: 1 });
    const queueUrl = await createFifoQueue('limits-batch', { visibilityTimeout: 2 });
    const sqs = new SQSClient(awsConfig());
    for (const [i, ms] of [10, 30_000].entries())
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify({ op: 'sleep', ms }),
          MessageGroupId: 'g',
          MessageDeduplicationId: `m${i}`,
        }),
      );
    const failed = await deliverBatch(queueUrl, (e) => fn.invoke<SQSBatchResponse>(e)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(BatchFailedError);
    const { received } = failed as BatchFailedError;
    expect(received).toHaveLength(2);
    expect((failed as Error).message).toContain('Task timed out after 1.00 seconds');
    expect(await receiveRecords(sqs, queueUrl)).toEqual([]); // in flight

    await new Promise((r) => setTimeout(r, 2500));
    const again: SQSRecord[] = [];
    for (let i = 0; i < 10 && again.length < received.length; i++) {
      const { failures } = await deliverBatch(queueUrl, async (e) => {
        again.push(...e.Records);
        return { batchItemFailures: [] };
      });
      expect(failures).toEqual([]);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(again.map((r) => r.messageId).sort()).toEqual([...received].sort());
    expect(again.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['2', '2']);
    expect(await receiveRecords(sqs, queueUrl)).toEqual([]); // deleted now
  });
});

describe('the built bundles', () => {
  it("every function's bundle loads and exports its handler on the system Node and on the runtime's Node", async () => {
    const nodes = [...new Set([process.execPath, nodeForRuntime(serverlessYml().provider.runtime)])];
    const dirs = readdirSync(join(root, 'dist', 'functions'));
    expect(dirs.length).toBeGreaterThan(0);
    for (const dir of dirs) {
      const { file, exportName, limits } = functionDefinition(dir);
      for (const node of [...nodes, nodeForRuntime(limits.runtime)]) {
        const { stdout } = await run(node, [
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(file)}); console.log(process.version, typeof m[${JSON.stringify(exportName)}]);`,
        ]);
        expect(stdout.trim(), `${dir} on ${node}`).toMatch(/^v\d+\.\d+\.\d+ function$/);
      }
    }
  });
});

describe('the built sync-worker on an ordinary push: measured within its limits', () => {
  const h = deployedPath('limits');
  const chartDir = join(root, 'test', 'fixtures', 'chart');

  it("renders a helm chart (helm, a process it spawns, counted) and applies it; every invocation's resident memory and /tmp stayed under the function's sizes", async () => {
    const target = uniqueName('limits-chart');
    const chart = (path: string): string => readFileSync(join(chartDir, path), 'utf8');
    const sha = await h.repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: target, cluster: 'test', path: 'apps/chart', targetNamespace: target, wait: false }],
      }),
      'apps/chart/Chart.yaml': chart('Chart.yaml'),
      'apps/chart/values.yaml': chart('values.yaml'),
      'apps/chart/templates/deployment.yaml': chart('templates/deployment.yaml'),
    });
    await h.push(sha, ['tidegate.yaml', 'apps/chart/Chart.yaml', 'apps/chart/values.yaml']);
    await h.work();
    expect(await h.repo.engine.client.get('apps/v1', 'Deployment', target, target)).toBeDefined();

    const { limits } = functionDefinition('sync-worker');
    expect(h.worker).toMatchObject({
      memorySizeMiB: limits.memorySize,
      ephemeralStorageMiB: limits.ephemeralStorageSize,
      timeoutMs: limits.timeout * 1000,
      runtime: 'nodejs22.x',
    });
    const reports = h.worker.invocations();
    expect(reports.length).toBeGreaterThanOrEqual(1); // the fan-out, and the sync in it
    for (const r of reports) {
      expect(r.killed, r.error).toBeUndefined();
      expect(r.nodeVersion).toMatch(/^v22\./);
      expect(r.peakRssMiB).toBeGreaterThan(20);
      expect(r.peakRssMiB).toBeLessThan(h.worker.memorySizeMiB);
      expect(r.peakTmpMiB).toBeLessThan(h.worker.ephemeralStorageMiB);
    }
    expect(Math.max(...reports.map((r) => r.peakTmpMiB))).toBeGreaterThan(0); // the checkout is in /tmp
    for (const r of h.webhook.invocations()) expect(r.peakRssMiB).toBeLessThan(h.webhook.memorySizeMiB);
  });
});
