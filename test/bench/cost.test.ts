import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  GOAL,
  PLATFORM_LOG_BYTES,
  PRICES,
  argoCdMonthly,
  billedMs,
  costMarkdown,
  deploySecrets,
  eventAt,
  eventCost,
  fluxMonthly,
  fluxNode,
  goalRow,
  monthlyCost,
  monthlyCounts,
  scenario,
  stackFacts,
  type EventUse,
  type FunctionUse,
  type Measurement,
  type MeasuredPoint,
} from '../../bench/cost.js';

/**
 * The cost model of docs/cost.md (bench/cost.ts) on known inputs: no servers, no measurement. The
 * measured inputs are made up here so that every number can be computed by hand.
 */
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const stack = stackFacts(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'), README);
const GB = 1024 ** 3;

const use = (invocations: number, ms: number, over: Partial<FunctionUse> = {}): FunctionUse => ({
  invocations,
  billedMs: ms,
  cpuMs: 0,
  logBytes: 0,
  peakRssMiB: 100,
  ...over,
});
const event = (functions: Record<string, FunctionUse>, over: Partial<EventUse> = {}): EventUse => ({
  functions,
  sqsRequests: 0,
  apiRequests: 0,
  extraMetricSeries: 0,
  samples: 1,
  ...over,
});

/** Everything proportional to the number of targets (nothing at zero targets). */
function proportional(targets: number): MeasuredPoint {
  const k = targets / 10;
  return {
    targets,
    push: event({ githubWebhook: use(k, 10 * k), syncWorker: use(k, 100 * k) }, { apiRequests: k, sqsRequests: k }),
    quietTick: event({ scheduledPoll: use(k, 40 * k), syncWorker: use(k, 50 * k) }),
    driftPass: event({ syncWorker: use(k, 1000 * k) }, { sqsRequests: k }),
    statusPage: event({ statusPage: use(k, 200 * k) }, { apiRequests: k }),
    idleMetricSeries: 2 * targets,
  };
}
const measurement = (points: MeasuredPoint[]): Measurement => ({
  date: '2026-12-07',
  machine: 'test',
  clusters: 2,
  driftIntervalMin: 10,
  points,
  initMs: {},
  notes: [],
});
const linear = measurement([proportional(10), proportional(100)]);
const line = (c: ReturnType<typeof monthlyCost>, start: string): number =>
  c.lines.find((l) => l.item.startsWith(start))?.usd ?? NaN;

describe('cost model: the stack from serverless.yml', () => {
  it('memory, architecture and /tmp per function; every function arm64 but the worker', () => {
    const fn = (name: string) => stack.functions.find((f) => f.name === name);
    expect(fn('syncWorker')).toMatchObject({ memoryMiB: 1024, architecture: 'x86_64', ephemeralMiB: 2048 });
    expect(fn('statusPage')).toMatchObject({ memoryMiB: 256, architecture: 'arm64', ephemeralMiB: 512 });
    expect(fn('githubWebhook')).toMatchObject({ memoryMiB: 512, architecture: 'arm64' });
    expect(fn('scheduledPoll')).toMatchObject({ memoryMiB: 512, architecture: 'arm64' });
    expect(stack.functions.filter((f) => f.architecture === 'x86_64').map((f) => f.name)).toEqual(['syncWorker']);
  });

  it('alarms: standard ones count one metric, the metric math alarm one per metric it reads; no fixed-price resources', () => {
    expect(stack.alarms.filter((a) => !a.math)).toHaveLength(5);
    expect(stack.alarms.filter((a) => a.math)).toEqual([{ name: 'ThrottlesAlarm', metrics: 2, math: true }]);
    expect(stack.fixedResources).toEqual([]);
    expect(stack.logRetentionDays).toBe(30);
  });
});

describe("cost model: the secrets of the README's deploy steps", () => {
  const readme = (commands: string[], after = ''): string =>
    [
      '# tidegate',
      '',
      '## Deploying to AWS',
      '',
      '2. **Secrets**:',
      '   ```sh',
      ...commands.map((c) => `   ${c}`),
      '   ```',
      '',
      '## What it does',
      '',
      after,
    ].join('\n');
  it.each([
    [
      'SSM parameters only',
      ['aws ssm put-parameter --type SecureString --name /a --value x'],
      '',
      { secretsManager: 0, ssmParameters: 1 },
    ],
    [
      'both kinds',
      [
        'aws secretsmanager create-secret --name a --secret-string x',
        'aws secretsmanager create-secret --name b --secret-string y',
        'aws ssm put-parameter --type SecureString --name /c --value z',
      ],
      '',
      { secretsManager: 2, ssmParameters: 1 },
    ],
    [
      'none; a command outside the section is not counted',
      [],
      'aws secretsmanager create-secret --name c --secret-string z',
      { secretsManager: 0, ssmParameters: 0 },
    ],
    [
      'a command named in prose is not counted',
      ['node -p "1"   # not `aws secretsmanager create-secret`'],
      '',
      { secretsManager: 0, ssmParameters: 0 },
    ],
  ])('%s', (_, commands, after, want) => {
    expect(deploySecrets(readme(commands, after))).toEqual(want);
  });

  it('the README as it is: four SSM SecureString parameters, no Secrets Manager secret', () => {
    expect(stack.deploySecrets).toEqual({ secretsManager: 0, ssmParameters: 4 });
  });

  it('a README without the section is refused', () => {
    expect(() => deploySecrets('# tidegate\n')).toThrow(/Deploying to AWS/);
  });

  it('Secrets Manager costs $0.40 a secret and month and its reads; SSM parameters nothing a month, their reads a KMS decrypt', () => {
    const ssm = monthlyCost(scenario(100, 20), linear, stack);
    const sm = monthlyCost(scenario(100, 20, { secrets: 4 }), linear, stack);
    expect(line(ssm, 'secrets:')).toBe(0);
    expect(line(sm, 'secrets:')).toBeCloseTo(4 * 0.4, 12);
    const calls = (20 * 730) / 24 + 2 * 730;
    expect(line(ssm, 'SSM parameter reads')).toBeCloseTo(calls * 0.000003, 12);
    expect(line(sm, 'Secrets Manager API calls')).toBeCloseTo(calls * 0.000005, 12);
    expect(sm.total - ssm.total).toBeCloseTo(1.6 + calls * (0.000005 - 0.000003), 9);
    // Counted from the README, not assumed: the same README with Secrets Manager commands costs the secrets.
    const smReadme = README.replace(
      /aws ssm put-parameter --type SecureString --name \/(\S+) --value/g,
      'aws secretsmanager create-secret --name $1 --secret-string',
    );
    const smStack = stackFacts(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'), smReadme);
    expect(smStack.deploySecrets).toEqual({ secretsManager: 4, ssmParameters: 0 });
    expect(monthlyCost(scenario(100, 20), linear, smStack).total).toBeCloseTo(sm.total, 9);
  });
});

describe('cost model: price arithmetic', () => {
  it('one worker invocation of a billed second, a GB of logs, 8 SQS requests: by hand', () => {
    const e = event(
      { syncWorker: use(1, 1000, { logBytes: GB - PLATFORM_LOG_BYTES }) },
      { sqsRequests: 8, apiRequests: 1 },
    );
    const c = eventCost(e, stack);
    // 1 s × 1 GB × x86_64, one request, 1 s × 1.5 GB of /tmp above 512 MB.
    expect(c.lambda).toBeCloseTo(0.0000166667 + 0.0000002 + 1.5 * 0.0000000309, 12);
    // 8 requests of the functions + a receive and a delete of the event source, FIFO.
    expect(c.sqs).toBeCloseTo(10 * 0.0000005, 12);
    expect(c.api).toBeCloseTo(0.000001, 12);
    expect(c.logs).toBeCloseTo(0.5 + 0.03, 12);
    expect(c.total).toBeCloseTo(c.lambda + c.sqs + c.api + c.logs, 12);
  });

  it('arm64 at its price: a 512 MB poll of 2 s is one GB-second', () => {
    expect(eventCost(event({ scheduledPoll: use(1, 2000) }), stack).lambda).toBeCloseTo(0.0000133334 + 0.0000002, 12);
  });

  it('CPU stretched to Lambda’s share: 100 ms of CPU at 1024 MB takes 1769/1024 as long', () => {
    const worker = stack.functions.find((f) => f.name === 'syncWorker');
    if (!worker) throw new Error('no worker');
    const u = use(1, 150, { cpuMs: 100 });
    expect(billedMs(u, worker, PRICES)).toBe(150);
    expect(billedMs(u, worker, PRICES, { cpuScaled: true })).toBeCloseTo(150 + 100 * (1769 / 1024 - 1), 9);
  });

  it('a month: 43,800 ticks; a drift pass per interval and per cold start of the poll; one more per push', () => {
    expect(monthlyCounts(scenario(100, 20))).toEqual({
      ticks: 43_800,
      driftPasses: 4_380 + 730,
      pushes: (20 * 730) / 24,
      pushPasses: (20 * 730) / 24,
      statusViews: 0,
    });
    expect(monthlyCounts(scenario(100, 20, { driftIntervalMin: 5 })).driftPasses).toBe(8_760 + 730);
    expect(monthlyCounts(scenario(100, 20, { driftIntervalMin: 60, coldStartsPerHour: 0 })).driftPasses).toBe(730);
    // Never more passes than ticks.
    expect(monthlyCounts(scenario(100, 20 * 24 * 60, { driftIntervalMin: 1 })).driftPasses).toBe(43_800);
    expect(monthlyCounts(scenario(100, 20 * 24 * 60, { driftIntervalMin: 1 })).pushPasses).toBe(0);
  });
});

describe('cost model: scenarios', () => {
  it('doubling the pushes doubles the push part and nothing else', () => {
    const a = monthlyCost(scenario(100, 20), linear, stack);
    const b = monthlyCost(scenario(100, 40), linear, stack);
    for (const item of ['pushes:', 'the tick after each push']) expect(line(b, item)).toBeCloseTo(2 * line(a, item), 9);
    expect(line(b, 'poll ticks')).toBeCloseTo(line(a, 'poll ticks'), 12);
    expect(line(b, 'drift passes')).toBeCloseTo(line(a, 'drift passes'), 12);
    expect(line(a, 'pushes:')).toBeGreaterThan(0);
  });

  it('zero targets and no pushes: the fixed part alone (alarms, the idle queue’s polls, secret reads; SSM parameters cost nothing a month)', () => {
    const c = monthlyCost(scenario(0, 0), linear, stack);
    const fixed = 7 * 0.1 + 0 * 0.4 + 5 * 3 * 43_800 * 0.0000005 + 2 * 730 * 0.000003;
    expect(c.events).toBeCloseTo(0, 12);
    expect(c.total).toBeCloseTo(fixed, 9);
    expect(c.fixed).toBeCloseTo(fixed, 9);
  });

  it('custom metrics: the idle series all month, a push’s own series by the hour', () => {
    const m = measurement(
      [10, 100].map((t) => ({
        ...proportional(t),
        push: event({}, { extraMetricSeries: 4 }),
        idleMetricSeries: 2 * t + 5,
      })),
    );
    const c = monthlyCost(scenario(100, 24), m, stack);
    expect(line(c, 'CloudWatch custom metrics')).toBeCloseTo((205 + (4 * 730) / 730) * 0.3, 9);
  });

  it('between and beyond the measured points: linear', () => {
    const mid = eventAt(linear.points, 'driftPass', 55);
    expect(mid.functions['syncWorker']?.billedMs).toBeCloseTo(5500, 9);
    expect(eventAt(linear.points, 'driftPass', 1000).functions['syncWorker']?.invocations).toBeCloseTo(100, 9);
    expect(eventAt(linear.points, 'driftPass', 100)).toBe(linear.points[1]?.driftPass);
  });

  it('the alternatives: the Argo CD capability per Application-hour, Flux on its smallest node per cluster', () => {
    expect(argoCdMonthly(100)).toBeCloseTo((0.02771 + 100 * 0.00136) * 730, 9);
    expect(argoCdMonthly(1001)).toBeCloseTo((2 * 0.02771 + 1001 * 0.00136) * 730, 9);
    expect(fluxNode().instance.type).toBe('t4g.small');
    expect(fluxNode().why).toContain('t4g.micro: 4 pods < 6');
    expect(fluxMonthly(2)).toBeCloseTo(2 * 0.0168 * 730, 9);
  });

  it('the goal is stated as the issue states it, and judged on the measured durations', () => {
    const row = goalRow(linear, stack);
    expect(`${row.name}: ${row.goal}`).toBe(
      'idle cost, 100 targets on 2 clusters, 1 poll/min, 20 pushes/day: ≤ $5/month, from measured durations and memory',
    );
    expect(row.met).toBe(monthlyCost(GOAL.scenario(), linear, stack).total <= 5);
    expect(costMarkdown(linear, stack)).toContain(`| ${GOAL.name}: ${GOAL.goal} |`);
  });
});
