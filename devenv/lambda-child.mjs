// One Lambda function as the nodejs runtime runs it: the bundle named by its handler string is
// imported once (the init phase, before the runtime says it is ready), then each invocation message
// from the parent calls the handler with the event and a context whose remaining time counts down
// to the invocation's deadline. The parent (devenv/lambda.ts) runs this with the Node of the
// function's runtime and the runtime's heap flags, measures the process tree and kills it at the
// function's limits.
import { randomUUID } from 'node:crypto';
import process from 'node:process';

const [file, exportName, functionName, memory] = process.argv.slice(2);
let initError;
const loaded = await import(file).catch((err) => {
  initError = err;
  return {};
});

process.on('message', async ({ id, event, timeoutMs, requestId }) => {
  const deadline = Date.now() + timeoutMs;
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:123456789012:function:${functionName}`,
    memoryLimitInMB: memory,
    awsRequestId: requestId ?? randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'test',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    if (initError) throw initError;
    const handler = loaded[exportName];
    if (typeof handler !== 'function') throw new Error(`${file} does not export a function ${exportName}`);
    const result = await handler(event, context);
    process.send({ id, result });
  } catch (err) {
    process.send({ id, error: { name: err?.name, message: err?.message ?? String(err) } });
  }
});
// The parent is the Lambda service: without it there is nothing more to invoke.
process.on('disconnect', () => process.exit(0));
// A profiled process (TIDEGATE_CPU_PROF_DIR) exits on the SIGTERM of stop(), so that its profile is written.
if (process.execArgv.includes('--cpu-prof')) process.on('SIGTERM', () => process.exit(0));
process.send({ ready: true, version: process.version });
