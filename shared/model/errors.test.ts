import { describe, expect, it } from 'vitest';
import { awsCall, isTransient } from './errors.js';

/** An error as the AWS SDK v3 throws it: a name, a message and the HTTP status in $metadata. */
const sdkError = (name: string, message: string, httpStatusCode?: number) =>
  Object.assign(new Error(message), { name, ...(httpStatusCode ? { $metadata: { httpStatusCode } } : {}) });

describe('awsCall: a failed AWS call names its action and says whether it may pass', () => {
  it.each<[string, unknown, RegExp, boolean]>([
    [
      'denied (403)',
      sdkError('AccessDeniedException', 'User: x is not authorized to perform: ecr:ListImages', 403),
      /^cannot list tags \(ecr:ListImages, HTTP 403\): User: x is not authorized/,
      false,
    ],
    [
      'an answer the SDK could not read, first line only',
      sdkError('SyntaxError', "Unexpected token '<'\n  Deserialization error: see $response", 403),
      /^cannot list tags \(ecr:ListImages, HTTP 403\): Unexpected token '<'$/,
      false,
    ],
    ['throttled (429)', sdkError('ThrottlingException', 'Rate exceeded', 429), /HTTP 429\): Rate exceeded$/, true],
    ['the service failing (503)', sdkError('ServiceUnavailable', 'try later', 503), /HTTP 503/, true],
    [
      'the network (no HTTP answer)',
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      /^cannot list tags \(ecr:ListImages\): socket hang up$/,
      true,
    ],
  ])('%s', async (_, thrown, message, transient) => {
    const err = await awsCall('ecr:ListImages', 'cannot list tags', Promise.reject(thrown)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(message);
    expect(isTransient(err)).toBe(transient);
  });

  it('passes a result through', async () => {
    expect(await awsCall('sqs:SendMessage', 'x', Promise.resolve(7))).toBe(7);
  });
});
