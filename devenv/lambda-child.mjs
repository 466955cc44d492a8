// One Lambda function as the nodejs runtime runs it: the bundle named by its handler string is
// imported once (the cold start), then each invocation message from the parent calls the handler
// with the event and a context whose remaining time counts down to the invocation's deadline.
import { randomUUID } from 'node:crypto';
import process from 'node:process';

const [file, exportName, functionName, memory] = process.argv.slice(2);
const loaded = import(file);

process.on('message', async ({ id, event, timeoutMs }) => {
  const deadline = Date.now() + timeoutMs;
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:123456789012:function:${functionName}`,
    memoryLimitInMB: memory,
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'test',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    const handler = (await loaded)[exportName];
    const result = await handler(event, context);
    process.send({ id, result });
  } catch (err) {
    process.send({ id, error: { name: err?.name, message: err?.message ?? String(err) } });
  }
});
process.send({ ready: true });
