import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** What a sync tells the metrics: its target and cluster, how it ended, how long it took. */
export interface SyncMeasure {
  target: string;
  cluster: string;
  outcome: string;
  durationMs: number;
  /** From the push's webhook to the objects applied (applied and progressing syncs with a push behind them). */
  latencyMs?: number | undefined;
}

/** The engine's metrics: CloudWatch metrics in Embedded Metric Format (EMF), one log line each. */
export interface MetricsSink {
  /** A sync's outcome (`Syncs<Outcome>`, 1), `SyncDuration` and `PushToAppliedLatency`, per cluster (and per target when asked); an unchanged one only when asked. */
  sync(m: SyncMeasure): void;
  /** A count of the function (MessagesFailed, MessagesDeferred, MessagesDeadLettered). */
  count(name: string, value?: number): void;
  /** A level of the function at this moment (DeadLetterQueueDepth). */
  gauge(name: string, value: number): void;
}

const title = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Metrics through Powertools: the namespace from POWERTOOLS_METRICS_NAMESPACE (the stack sets
 * `tidegate-<stage>`), the function as the `service` dimension. Each call is written at once, so
 * nothing is lost when an invocation ends abruptly.
 */
export function powertoolsMetrics(
  serviceName: string,
  namespace?: string,
  /**
   * Also per target (the deploy-time setting metrics.perTarget): a custom metric per target and name.
   * Syncs that changed nothing too (metrics.unchanged): a drift pass syncs every target, so their
   * series are sent every hour and billed all month.
   */
  opts: { perTarget?: boolean; unchanged?: boolean } = {},
): MetricsSink {
  // Made on first use: a function that publishes nothing (a refused webhook) pays nothing for it.
  let made: Metrics | undefined;
  const emit = (dimensions: Record<string, string>, add: (m: Metrics) => void): void => {
    const metrics = (made ??= new Metrics({ serviceName, ...(namespace ? { namespace } : {}) }));
    if (Object.keys(dimensions).length > 0) metrics.addDimensions(dimensions);
    add(metrics);
    metrics.publishStoredMetrics();
  };
  return {
    sync: (m) => {
      if (m.outcome === 'unchanged' && !opts.unchanged) return;
      const add = (x: Metrics): void => {
        x.addMetric(`Syncs${title(m.outcome)}`, MetricUnit.Count, 1);
        x.addMetric('SyncDuration', MetricUnit.Milliseconds, m.durationMs);
        if (m.latencyMs !== undefined) x.addMetric('PushToAppliedLatency', MetricUnit.Milliseconds, m.latencyMs);
      };
      if (opts.perTarget) emit({ Cluster: m.cluster, Target: m.target }, add);
      emit({ Cluster: m.cluster }, add);
    },
    count: (name, value = 1) => emit({}, (x) => x.addMetric(name, MetricUnit.Count, value)),
    gauge: (name, value) => emit({}, (x) => x.addMetric(name, MetricUnit.Count, value)),
  };
}
