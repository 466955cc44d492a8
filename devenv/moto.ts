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

/** Starts `moto_server` from the venv `npm run setup` created. */
export async function startMoto(dir: string): Promise<Moto> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = startProcess(
    'moto',
    join(motoVenvDir(), 'bin', 'moto_server'),
    ['-H', '127.0.0.1', '-p', String(port)],
    { logFile: join(dir, 'moto.log') },
  );
  try {
    await waitUntilReady(proc, async () => (await fetch(`${endpoint}/moto-api/data.json`)).ok, 60_000);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return {
    endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    reset: async () => void (await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' })),
    stop: () => proc.stop(),
  };
}
