/**
 * Every failure tidegate raises on purpose, by code. Callers branch on the classes below (or
 * `isTidegateError(err, code)`), never on message text.
 */
export type ErrorCode =
  // configuration and usage
  | 'ConfigInvalid'
  | 'ConfigMissing'
  | 'SettingsInvalid'
  | 'SettingsMissing'
  | 'SecretMissing'
  | 'Usage'
  // clusters
  | 'UnknownCluster'
  | 'NoCluster'
  | 'EksClusterIncomplete'
  | 'KubeApi'
  | 'KubeUnreachable'
  // sources and rendering
  | 'SourceFailed'
  | 'SourceMissing'
  | 'WorktreeDirty'
  | 'RepositoryFileRefused'
  | 'PushFailed'
  | 'RenderFailed'
  | 'ToolNotFound'
  | 'EmptyRender'
  // plan, apply and target state
  | 'PlanFailed'
  | 'ApplyFailed'
  | 'HookFailed'
  | 'StateConflict'
  | 'StateTooLarge'
  | 'StateUnreadable'
  | 'LeaseBusy'
  | 'LeaseLost'
  | 'TargetOwnedElsewhere'
  | 'PreviewRegisterConflict'
  | 'PreviewRegisterUnreadable'
  | 'HeartbeatConflict'
  | 'ReloadRegisterUnreadable'
  | 'ReloadRegisterConflict'
  | 'HeartbeatUnreadable'
  | 'PreviewRefused'
  // targets and revisions
  | 'TargetNotFound'
  | 'RevisionUnknown'
  | 'RevisionNotApplied'
  | 'NoHealthyRevision'
  // GitHub, registries, the queue
  | 'GitHubFailed'
  | 'GitHubMissing'
  | 'GitHubAppAuthFailed'
  | 'GitHubAppNotInstalled'
  | 'GitHubRepoUnknown'
  | 'RegistryFailed'
  | 'QueueFailed'
  | 'AwsCallFailed'
  | 'ReloadPatternInvalid'
  | 'ReloadPatternTooCostly'
  | 'ReloadBaselineInvalid';

/** Base class of every error tidegate raises on purpose: a code, a message, a cause, and whether it may pass on its own. */
export class TidegateError extends Error {
  readonly code: ErrorCode;
  /**
   * A failure that may pass on its own (throttling, an outage of the apiserver, GitHub or git, a
   * busy target): the work is tried again later (the queue), never recorded as a failed sync.
   */
  readonly transient: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.transient = options?.transient ?? false;
  }
}

/** A cluster alias the settings (or the kubeconfig) do not know. */
export class UnknownClusterError extends TidegateError {
  constructor(alias: string, known: readonly string[]) {
    super(
      'UnknownCluster',
      `cluster alias "${alias}" is not in the deploy-time settings (clusters: ${known.join(', ') || 'none'})`,
    );
  }
}

/** tidegate.yaml has no target of this name. */
export class TargetNotFoundError extends TidegateError {
  constructor(
    readonly target: string,
    file: string,
  ) {
    super('TargetNotFound', `${file} declares no target named "${target}"`);
  }
}

/** The target name is owned by another repository on this cluster (target names are cluster-wide). */
export class TargetOwnedElsewhereError extends TidegateError {
  constructor(message: string) {
    super('TargetOwnedElsewhere', message);
  }
}

/** A revision a command names is not one it may use (unknown, or never applied to the target). */
export class RevisionError extends TidegateError {
  constructor(code: 'RevisionUnknown' | 'RevisionNotApplied' | 'NoHealthyRevision', message: string) {
    super(code, message);
  }
}

/** Whether `err` is a TidegateError (of one code, when given). */
export function isTidegateError(err: unknown, code?: ErrorCode): err is TidegateError {
  return err instanceof TidegateError && (code === undefined || err.code === code);
}

/** Whether an error may pass on its own: the queue should try the work again, not record a failure. */
export const isTransient = (err: unknown): boolean => err instanceof TidegateError && err.transient;

/** The message of anything thrown. */
export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * An AWS API call whose failure names the action it was (`secretsmanager:GetSecretValue`): a denied
 * call says what to allow, even where the service's own answer could not be read. Transient when
 * the network or the service failed for now (throttling, 5xx).
 */
export async function awsCall<T>(action: string, what: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    throw new TidegateError(
      'AwsCallFailed',
      `${what} (${action}${status ? `, HTTP ${status}` : ''}): ${errorMessage(err).split('\n')[0]}`,
      { cause: err, transient: isNetworkFailure(err) },
    );
  }
}

/** Socket error codes of a network that let a connection down; a later try may well get through. */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

/** A failure of the network, or an HTTP answer saying the server is throttling or failing for now (429, 5xx), anywhere in a cause chain. */
export function isNetworkFailure(err: unknown): boolean {
  for (
    let e: unknown = err, depth = 0;
    e && typeof e === 'object' && depth < 5;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const { code, status, data, $metadata } = e as {
      code?: unknown;
      status?: unknown;
      data?: { statusCode?: unknown };
      $metadata?: { httpStatusCode?: unknown };
    };
    const http = [status, data?.statusCode, $metadata?.httpStatusCode].find((n) => typeof n === 'number') as
      number | undefined;
    if (http !== undefined) return http === 429 || http >= 500;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
    if (e instanceof Error && e.name === 'TimeoutError') return true;
  }
  return false;
}
