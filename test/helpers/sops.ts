import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { run, sopsPath } from '../../devenv/index.js';
import { awsConfig, motoEnv } from './lambda.js';

/** A new age key pair (X25519): the identity (AGE-SECRET-KEY-1…) and its recipient (age1…). */
export async function ageKey(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** A new symmetric KMS key on the test environment's moto: its ARN. */
export async function motoKmsKey(): Promise<string> {
  const kms = new KMSClient(awsConfig());
  const out = await kms.send(new CreateKeyCommand({ Description: 'tidegate sops test' }));
  kms.destroy();
  const arn = out.KeyMetadata?.Arn;
  if (!arn) throw new Error('moto created no KMS key');
  return arn;
}

/**
 * A file encrypted by the real sops binary (`sops encrypt`), its format from the name's extension
 * (or --input-type in args): for age recipients (--age) or KMS keys on moto (--kms).
 */
export async function sopsEncrypt(name: string, text: string, args: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-sops-'));
  try {
    writeFileSync(join(dir, name), text);
    return await run(sopsPath(), ['encrypt', ...args, name], {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', HOME: dir, ...motoEnv() },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
