import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { errorMessage } from '../model/index.js';

/**
 * Cosign signatures of an OCI manifest made with a key (`cosign sign --key`), read as cosign v2
 * stores them and checked as `cosign verify --key` checks them, without the transparency log
 * (as Flux does for a public key): the manifest of tag `sha256-<hex>.sig` in the same repository,
 * each of its simple-signing layers a JSON payload (its blob, checked against the layer's digest)
 * whose base64 signature is the layer's annotation. A signature counts when one of the keys
 * verifies it over the payload's exact bytes (ECDSA and RSA PKCS#1 v1.5 over SHA-256, Ed25519) and
 * the payload names the manifest digest being verified. The format as sigstore/cosign v2 defines it:
 * pkg/oci/remote/remote.go (the tag), pkg/oci/static/signature.go (the annotation),
 * pkg/cosign/verifiers.go SimpleClaimVerifier (the digest claim), pkg/signature/keys.go (SHA-256).
 */

/** The GETs verification makes of the signed manifest's repository (paths under /v2/<repository>/). */
export interface OciReader {
  get(path: string, accept?: string): Promise<Uint8Array>;
}

/** No signature of the manifest verified: why, signature by signature. */
export class SignatureError extends Error {
  constructor(
    readonly digest: string,
    readonly reasons: readonly string[],
  ) {
    super(`no valid cosign signature of ${digest} by a trusted key: ${reasons.join('; ')}`);
  }
}

const SIGNATURE_LAYER = 'application/vnd.dev.cosign.simplesigning.v1+json';
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const PAYLOAD_TYPE = 'cosign container image signature';
const MANIFESTS = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
/** Signatures read of one manifest at most (each is one layer of the signature manifest). */
const MAX_SIGNATURES = 20;

interface Layer {
  mediaType?: unknown;
  digest?: unknown;
  annotations?: Record<string, unknown> | null;
}

/** A PEM public key cosign can verify with, or why not. */
export function cosignKey(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (!['ec', 'rsa', 'ed25519'].includes(key.asymmetricKeyType ?? ''))
    throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'} key: cosign keys are ECDSA, RSA or Ed25519`);
  return key;
}

const sha256 = (data: Uint8Array): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function verifiedBy(keys: readonly KeyObject[], payload: Uint8Array, signature: Buffer): boolean {
  return keys.some((key) => {
    try {
      return verify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', payload, key, signature);
    } catch {
      return false; // a signature of another key type or a malformed one
    }
  });
}

/** What the payload claims when its signature holds: undefined if it names `digest`, else why not. */
function claimProblem(payload: Uint8Array, digest: string): string | undefined {
  let claims: { critical?: { type?: unknown; image?: { 'docker-manifest-digest'?: unknown } } };
  try {
    claims = JSON.parse(Buffer.from(payload).toString('utf8')) as typeof claims;
  } catch {
    return 'its payload is not JSON';
  }
  if (claims.critical?.type !== PAYLOAD_TYPE) return `its payload is not a ${PAYLOAD_TYPE}`;
  const named = claims.critical.image?.['docker-manifest-digest'];
  return named === digest ? undefined : `it signs ${String(named)}, another manifest`;
}

/** One signature layer: undefined when it verifies for `digest`, else why not. */
async function layerProblem(
  registry: OciReader,
  layer: Layer,
  digest: string,
  keys: readonly KeyObject[],
): Promise<string | undefined> {
  const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
  if (typeof layer.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(layer.digest))
    return 'its layer has no sha256 digest';
  if (typeof signature !== 'string' || signature === '') return `its layer has no ${SIGNATURE_ANNOTATION} annotation`;
  let payload: Uint8Array;
  try {
    payload = await registry.get(`blobs/${layer.digest}`);
  } catch (err) {
    return `its payload cannot be read (${errorMessage(err)})`;
  }
  if (sha256(payload) !== layer.digest)
    return `its payload has digest ${sha256(payload)}, the layer says ${layer.digest}`;
  if (!verifiedBy(keys, payload, Buffer.from(signature, 'base64'))) return 'not made by a trusted key';
  return claimProblem(payload, digest);
}

/**
 * Resolves when a cosign signature made by one of `publicKeys` (PEM) names `digest` (sha256:<hex>, the
 * manifest actually used); throws a SignatureError saying why no signature does.
 */
export async function verifyCosignSignature(
  registry: OciReader,
  digest: string,
  publicKeys: readonly string[],
): Promise<void> {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`${digest} is not a sha256 manifest digest`);
  const keys = publicKeys.map(cosignKey);
  if (keys.length === 0) throw new SignatureError(digest, ['no public key to verify with']);
  const tag = `sha256-${digest.slice('sha256:'.length)}.sig`;
  let manifest: { layers?: Layer[] | null };
  try {
    manifest = JSON.parse(Buffer.from(await registry.get(`manifests/${tag}`, MANIFESTS)).toString('utf8')) as {
      layers?: Layer[];
    };
  } catch (err) {
    throw new SignatureError(digest, [`the signature tag ${tag} cannot be read (${errorMessage(err)})`]);
  }
  const layers = (manifest.layers ?? []).filter((l) => l.mediaType === SIGNATURE_LAYER).slice(0, MAX_SIGNATURES);
  if (layers.length === 0)
    throw new SignatureError(digest, [`the signature manifest ${tag} has no ${SIGNATURE_LAYER} layer`]);
  const reasons: string[] = [];
  for (const [i, layer] of layers.entries()) {
    const problem = await layerProblem(registry, layer, digest, keys);
    if (problem === undefined) return;
    reasons.push(`signature ${i + 1}: ${problem}`);
  }
  throw new SignatureError(digest, reasons);
}
