import { CloudWatchClient, PutMetricDataCommand, type StandardUnit } from '@aws-sdk/client-cloudwatch';
import type { AwsAccess } from './lambda.js';

interface EmfLine {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit?: string }>;
    }>;
  };
  [key: string]: unknown;
}

const emfLines = (log: string): EmfLine[] =>
  log.split('\n').flatMap((line) => {
    if (!line.startsWith('{') || !line.includes('"_aws"')) return [];
    try {
      const parsed = JSON.parse(line) as Partial<EmfLine>;
      return parsed._aws?.CloudWatchMetrics ? [parsed as EmfLine] : [];
    } catch {
      return [];
    }
  });

/**
 * What CloudWatch Logs does with a Lambda function's log lines in Embedded Metric Format: each
 * metric of each dimension set put as a metric datum (here into moto's CloudWatch). Returns how
 * many data were put.
 */
export async function publishEmf(log: string, aws: AwsAccess): Promise<number> {
  const cw = new CloudWatchClient(aws);
  let put = 0;
  for (const line of emfLines(log))
    for (const directive of line._aws.CloudWatchMetrics)
      for (const dimensions of directive.Dimensions) {
        const data = directive.Metrics.map((m) => ({
          MetricName: m.Name,
          Unit: (m.Unit ?? 'None') as StandardUnit,
          Value: Number(line[m.Name]),
          Timestamp: new Date(line._aws.Timestamp),
          Dimensions: dimensions.map((d) => ({ Name: d, Value: String(line[d]) })),
        }));
        await cw.send(new PutMetricDataCommand({ Namespace: directive.Namespace, MetricData: data }));
        put += data.length;
      }
  return put;
}
