import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { motoVenvDir } from './paths.js';
import { freePort, startProcess, waitUntilReady } from './process.js';

export interface MotoInfo {
  /** Endpoint for every AWS SDK client (SQS, ECR, STS, EKS, EventBridge). */
  endpoint: string;
  region: string;
  /** Static test credentials; moto accepts any. */
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export interface Moto extends MotoInfo {
  /** Wipes all state (POST /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** The admin principal's name, made when IAM is enforced (test setup acts as it; functions never do). */
const ADMIN = 'tidegate-test-admin';

/**
 * moto_server's main, with the SQS models reading the clock from time.time(): moto's own clock
 * (datetime arithmetic, about 5 µs a read) is read twice per message of the queue on every call, so
 * a FIFO queue of a thousand messages took 0.5 s an SQS call (a thousand messages sent in 78 s).
 * The same time, read faster; a given datetime is converted as before.
 */
const MOTO_SERVER = `
import sys, time
import moto.sqs.models as sqs
unix_time, unix_time_millis = sqs.unix_time, sqs.unix_time_millis
sqs.unix_time = lambda dt=None: unix_time(dt) if dt is not None else time.time()
sqs.unix_time_millis = lambda dt=None: unix_time_millis(dt) if dt is not None else time.time() * 1000.0
from moto.server import main
main(sys.argv[1:])
`;

/**
 * Starts moto's server (MOTO_SERVER) from the venv `npm run setup` created. With `enforceIam`, moto checks every
 * request against the IAM policies of the calling principal (its INITIAL_NO_AUTH_ACTION_COUNT
 * setting): the first three requests make an admin user for test setup (whose keys are returned as
 * `credentials`), and from then on only principals made with IAM have access, to what their
 * policies allow.
 */
export async function startMoto(dir: string, opts: { enforceIam?: boolean } = {}): Promise<Moto> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = startProcess(
    'moto',
    join(motoVenvDir(), 'bin', 'python3'),
    ['-c', MOTO_SERVER, '-H', '127.0.0.1', '-p', String(port)],
    {
      logFile: join(dir, 'moto.log'),
      env: { ...process.env, ...(opts.enforceIam ? { INITIAL_NO_AUTH_ACTION_COUNT: '3' } : {}) },
    },
  );
  try {
    await waitUntilReady(proc, async () => (await fetch(`${endpoint}/moto-api/data.json`)).ok, 60_000);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  const credentials = opts.enforceIam
    ? await adminKeys(endpoint)
    : { accessKeyId: 'testing', secretAccessKey: 'testing' };
  return {
    endpoint,
    region: 'eu-west-1',
    credentials,
    reset: async () => void (await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' })),
    stop: () => proc.stop(),
  };
}

/** The three unauthenticated requests: an admin user, its policy, its keys. */
async function adminKeys(endpoint: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } =
    await import('@aws-sdk/client-iam');
  const iam = new IAMClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bootstrap', secretAccessKey: 'bootstrap' },
  });
  await iam.send(new CreateUserCommand({ UserName: ADMIN }));
  const admin = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
  await iam.send(
    new PutUserPolicyCommand({ UserName: ADMIN, PolicyName: 'test-setup', PolicyDocument: JSON.stringify(admin) }),
  );
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: ADMIN }))).AccessKey;
  if (!key?.AccessKeyId || !key.SecretAccessKey) throw new Error('moto made no access key for the admin user');
  return { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
}
