import type { SNSEvent } from 'aws-lambda';
import { lambdaHandler } from '../../shared/aws/index.js';
import { alarmEvent, notify, type AlarmChange } from '../../shared/usecases/index.js';

/** The alarm topic (SNS) → the notification providers of the settings: each alarm's state change, as the event `alarm`. */
export const handler = lambdaHandler(
  'tidegate-alarm-notifier',
  async (event: SNSEvent, rt): Promise<{ notified: number }> => {
    const changes = event.Records.flatMap((r): AlarmChange[] => {
      try {
        return [JSON.parse(r.Sns.Message) as AlarmChange];
      } catch {
        rt.logger.warn('alarm topic message is not an alarm', { messageId: r.Sns.MessageId });
        return [];
      }
    });
    const events = changes.map((c) => alarmEvent(c));
    for (const e of events) rt.logger.info('alarm', { alarm: e.fields[0]?.[1], state: e.fields[1]?.[1] });
    if (rt.notifier) await notify({ notifier: rt.notifier, logger: rt.logger }, events);
    return { notified: rt.notifier ? events.length : 0 };
  },
);
