import { stringify } from 'yaml';

/**
 * Charts in the shapes of the add-ons EKS clusters run (written for these tests; the real charts,
 * built from their sources, are run against tidegate locally and reported with each change): their
 * hooks (phases, weights, delete policies as those charts annotate them), their `lookup`s and
 * generated values, their labels (helm.sh/chart carries the version, so a version bump changes
 * every object), cluster-scoped objects named after the release.
 */
export interface AddonChart {
  name: string;
  /** Values the target gives (what the real chart needs to render, or to use lookup). */
  values: Record<string, unknown>;
  /** The chart's files at a version. */
  files(version: string): Record<string, string>;
  /** The hooks each action runs, in order: `<phase> <Kind>/<name suffix after the release name>`. */
  hooks: { install: string[]; upgrade: string[]; delete: string[] };
}

const LABELS = `    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/managed-by: {{ .Release.Service }}
    helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}`;

const chartYaml = (name: string, version: string, extra: Record<string, unknown> = {}): string =>
  stringify({ apiVersion: 'v2', name, version, appVersion: `v${version}`, ...extra });

/** A Deployment of the release (its image tagged with the app version). */
const deployment = (suffix: string, image: string, extraAnnotations = '') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-${suffix}
  labels:
${LABELS}
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
      app.kubernetes.io/component: ${suffix}
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
        app.kubernetes.io/component: ${suffix}
${extraAnnotations ? `      annotations:\n${extraAnnotations}\n` : ''}    spec:
      serviceAccountName: {{ .Release.Name }}
      containers:
        - name: ${suffix}
          image: "${image}:{{ .Chart.AppVersion }}"
`;

const serviceAccount = (hook = '') => `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}${hook ? '-hook' : ''}
  labels:
${LABELS}
${hook}`;

/** A hook's annotations, as charts write them. */
const hookAnnotations = (phases: string, weight?: number, policy?: string) =>
  `  annotations:
    "helm.sh/hook": ${phases}
${weight === undefined ? '' : `    "helm.sh/hook-weight": "${weight}"\n`}${policy ? `    "helm.sh/hook-delete-policy": ${policy}\n` : ''}`;

const hookJob = (suffix: string, annotations: string, image = 'busybox') => `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-${suffix}
  labels:
${LABELS}
${annotations}spec:
  backoffLimit: 4
  template:
    spec:
      restartPolicy: OnFailure
      serviceAccountName: {{ .Release.Name }}-${suffix}
      containers:
        - name: ${suffix}
          image: "${image}:{{ .Chart.AppVersion }}"
`;

/** A Role or ClusterRole and its binding to a ServiceAccount of the release's namespace. */
const rbac = (
  kind: 'Role' | 'ClusterRole',
  suffix: string,
  subject: string,
  annotations: string,
  resources: string,
) => `apiVersion: rbac.authorization.k8s.io/v1
kind: ${kind}
metadata:
  name: {{ .Release.Name }}-${suffix}
  labels:
${LABELS}
${annotations}rules:
  - apiGroups: [""]
    resources: ${resources}
    verbs: ["get", "list", "watch", "create", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ${kind}Binding
metadata:
  name: {{ .Release.Name }}-${suffix}
  labels:
${LABELS}
${annotations}roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ${kind}
  name: {{ .Release.Name }}-${suffix}
subjects:
  - kind: ServiceAccount
    name: {{ .Release.Name }}${subject}
    namespace: {{ .Release.Namespace }}
`;

/** RBAC for a hook Job: ServiceAccount, Role, RoleBinding, all hooks themselves. */
const hookRbac = (suffix: string, annotations: string) => `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}-${suffix}
  labels:
${LABELS}
${annotations}---
${rbac('Role', suffix, `-${suffix}`, annotations, '["secrets"]')}`;

/** A ClusterRole bound to the release's ServiceAccount (or, for hooks, to the hook's own). */
const clusterRbac = (suffix: string, annotations = '') =>
  rbac('ClusterRole', suffix, annotations ? `-${suffix}` : '', annotations, '["nodes", "pods", "services"]');

/** A webhook whose rules match only a group nothing serves: it can never be called (failurePolicy as the chart has it). */
const webhook = (kind: 'Validating' | 'Mutating', group: string, caBundle: string, failurePolicy = 'Fail') =>
  `apiVersion: admissionregistration.k8s.io/v1
kind: ${kind}WebhookConfiguration
metadata:
  name: {{ .Release.Name }}-webhook
  labels:
${LABELS}
webhooks:
  - name: webhook.${group}
    admissionReviewVersions: ["v1"]
    sideEffects: None
    failurePolicy: ${failurePolicy}
    clientConfig:
      service:
        name: {{ .Release.Name }}-webhook
        namespace: {{ .Release.Namespace }}
        path: /validate
${caBundle ? `      caBundle: ${caBundle}\n` : ''}    rules:
      - apiGroups: ["${group}"]
        apiVersions: ["*"]
        operations: ["CREATE", "UPDATE"]
        resources: ["*"]
`;

const service = (suffix: string) => `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-${suffix}
  labels:
${LABELS}
spec:
  ports:
    - port: 443
      targetPort: 10250
  selector:
    app.kubernetes.io/instance: {{ .Release.Name }}
`;

/** cert-manager: the startupapicheck Job and its RBAC are post-install hooks (RBAC at weight -5), before-hook-creation,hook-succeeded. */
const certManager: AddonChart = {
  name: 'cert-manager',
  values: {},
  files: (v) => {
    const post = hookAnnotations('post-install', -5, 'before-hook-creation,hook-succeeded');
    return {
      'Chart.yaml': chartYaml('cert-manager', v),
      'values.yaml': stringify({ startupapicheck: { enabled: true } }),
      'templates/serviceaccount.yaml': serviceAccount(),
      'templates/controller.yaml': deployment('controller', 'quay.io/jetstack/cert-manager-controller'),
      'templates/webhook.yaml': deployment('webhook', 'quay.io/jetstack/cert-manager-webhook'),
      'templates/cainjector.yaml': deployment('cainjector', 'quay.io/jetstack/cert-manager-cainjector'),
      'templates/webhook-service.yaml': service('webhook'),
      'templates/webhook-config.yaml': webhook('Validating', 'certs.addons.test', ''),
      'templates/startupapicheck-rbac.yaml': `{{- if .Values.startupapicheck.enabled }}\n${hookRbac('startupapicheck', post)}{{- end }}\n`,
      'templates/startupapicheck-job.yaml': `{{- if .Values.startupapicheck.enabled }}\n${hookJob('startupapicheck', hookAnnotations('post-install', 1, 'before-hook-creation,hook-succeeded'), 'quay.io/jetstack/cert-manager-startupapicheck')}{{- end }}\n`,
    };
  },
  hooks: {
    install: [
      'post-install ServiceAccount/startupapicheck',
      'post-install Role/startupapicheck',
      'post-install RoleBinding/startupapicheck',
      'post-install Job/startupapicheck',
    ],
    upgrade: [],
    delete: [],
  },
};

/**
 * Envoy Gateway: certgen (its RBAC at weight -1, the Job) runs before install and upgrade, written
 * "pre-install, pre-upgrade" with no delete policy; the safe-upgrades admission policy is rendered only
 * when absent or owned by this release (a lookup of Helm's ownership labels and annotations).
 */
const gateway: AddonChart = {
  name: 'gateway-helm',
  values: {},
  files: (v) => {
    const pre = hookAnnotations('pre-install, pre-upgrade', -1);
    const owned = (
      kind: string,
    ) => `{{- $${kind} := lookup "admissionregistration.k8s.io/v1" "${kind}" "" (printf "%s-safe-upgrades" .Release.Name) -}}
{{- $${kind}Owned := and $${kind} (eq (dig "metadata" "labels" "app.kubernetes.io/managed-by" "" $${kind}) "Helm") (eq (dig "metadata" "annotations" "meta.helm.sh/release-name" "" $${kind}) .Release.Name) (eq (dig "metadata" "annotations" "meta.helm.sh/release-namespace" "" $${kind}) .Release.Namespace) -}}`;
    return {
      'Chart.yaml': chartYaml('gateway-helm', v),
      'values.yaml': stringify({ certgen: { enabled: true } }),
      'templates/serviceaccount.yaml': serviceAccount(),
      'templates/deployment.yaml': deployment('envoy-gateway', 'docker.io/envoyproxy/gateway'),
      'templates/service.yaml': service('envoy-gateway'),
      'templates/config.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  labels:
${LABELS}
data:
  envoy-gateway.yaml: |
    apiVersion: gateway.envoyproxy.io/v1alpha1
    kind: EnvoyGateway
    provider:
      type: Kubernetes
`,
      'templates/certgen-rbac.yaml': hookRbac('certgen', pre),
      'templates/certgen.yaml': hookJob(
        'certgen',
        hookAnnotations('pre-install, pre-upgrade'),
        'docker.io/envoyproxy/gateway',
      ),
      'templates/safe-upgrades.yaml': `${owned('ValidatingAdmissionPolicy')}
${owned('ValidatingAdmissionPolicyBinding')}
{{- if and (or (not $ValidatingAdmissionPolicy) $ValidatingAdmissionPolicyOwned) (or (not $ValidatingAdmissionPolicyBinding) $ValidatingAdmissionPolicyBindingOwned) }}
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{ .Release.Name }}-safe-upgrades
spec:
  failurePolicy: Ignore
  matchConstraints:
    resourceRules:
      - apiGroups: ["gateway.addons.test"]
        apiVersions: ["*"]
        operations: ["UPDATE"]
        resources: ["gatewayclasses"]
  validations:
    - expression: "true"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ .Release.Name }}-safe-upgrades
spec:
  policyName: {{ .Release.Name }}-safe-upgrades
  validationActions: [Deny]
{{- end }}
`,
    };
  },
  hooks: {
    install: [
      'pre-install ServiceAccount/certgen',
      'pre-install Role/certgen',
      'pre-install RoleBinding/certgen',
      'pre-install Job/certgen',
    ],
    upgrade: [
      'pre-upgrade ServiceAccount/certgen',
      'pre-upgrade Role/certgen',
      'pre-upgrade RoleBinding/certgen',
      'pre-upgrade Job/certgen',
    ],
    delete: [],
  },
};

/** grafana, a dependency of kube-prometheus-stack: the admin password kept through lookup, its checksum on the Deployment. */
const grafana = (v: string): Record<string, string> => ({
  'charts/grafana/Chart.yaml': chartYaml('grafana', v),
  'charts/grafana/values.yaml': stringify({ adminUser: 'admin', adminPassword: '' }),
  'charts/grafana/templates/_helpers.tpl': `{{- define "grafana.password" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (printf "%s-grafana" .Release.Name) -}}
{{- if .Values.adminPassword -}}{{ .Values.adminPassword | b64enc }}
{{- else if and $secret (index $secret.data "admin-password") -}}{{ index $secret.data "admin-password" }}
{{- else -}}{{ randAlphaNum 40 | b64enc }}{{- end -}}
{{- end -}}
{{- define "grafana.secret" -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-grafana
  labels:
${LABELS}
type: Opaque
data:
  admin-user: {{ .Values.adminUser | b64enc | quote }}
  admin-password: {{ include "grafana.password" . | quote }}
{{- end -}}`,
  'charts/grafana/templates/secret.yaml': '{{ include "grafana.secret" . }}\n',
  'charts/grafana/templates/deployment.yaml': deployment(
    'grafana',
    'docker.io/grafana/grafana',
    '        checksum/secret: {{ include "grafana.secret" . | sha256sum }}',
  ).replace('serviceAccountName: {{ .Release.Name }}', 'automountServiceAccountToken: false'),
});

/**
 * kube-prometheus-stack: the admission webhook's RBAC on all four phases, its `create` Job before
 * install/upgrade and `patch` Job after, all before-hook-creation,hook-succeeded; grafana as a dependency.
 */
const monitoring: AddonChart = {
  name: 'kube-prometheus-stack',
  values: {},
  files: (v) => {
    const all = hookAnnotations(
      'pre-install,pre-upgrade,post-install,post-upgrade',
      undefined,
      'before-hook-creation,hook-succeeded',
    );
    const rbac = `${clusterRbac('admission', all)}---\n${hookRbac('admission', all)}`;
    return {
      'Chart.yaml': chartYaml('kube-prometheus-stack', v, {
        dependencies: [{ name: 'grafana', version: v, condition: 'grafana.enabled' }],
      }),
      'values.yaml': stringify({ grafana: { enabled: true } }),
      ...grafana(v),
      'templates/serviceaccount.yaml': serviceAccount(),
      'templates/operator.yaml': deployment('operator', 'quay.io/prometheus-operator/prometheus-operator'),
      'templates/operator-service.yaml': service('webhook'),
      'templates/cluster-rbac.yaml': clusterRbac('operator'),
      'templates/admission-webhook.yaml': webhook('Validating', 'monitoring.addons.test', '', 'Ignore'),
      'templates/admission-rbac.yaml': rbac,
      'templates/admission-create.yaml': hookJob(
        'admission',
        hookAnnotations('pre-install,pre-upgrade', undefined, 'before-hook-creation,hook-succeeded'),
        'registry.k8s.io/ingress-nginx/kube-webhook-certgen',
      ).replace('name: {{ .Release.Name }}-admission\n', 'name: {{ .Release.Name }}-admission-create\n'),
      'templates/admission-patch.yaml': hookJob(
        'admission',
        hookAnnotations('post-install,post-upgrade', undefined, 'before-hook-creation,hook-succeeded'),
        'registry.k8s.io/ingress-nginx/kube-webhook-certgen',
      ).replace('name: {{ .Release.Name }}-admission\n', 'name: {{ .Release.Name }}-admission-patch\n'),
    };
  },
  hooks: {
    install: [
      'pre-install ClusterRole/admission',
      'pre-install ServiceAccount/admission',
      'pre-install ClusterRoleBinding/admission',
      'pre-install Role/admission',
      'pre-install RoleBinding/admission',
      'pre-install Job/admission-create',
      'post-install ClusterRole/admission',
      'post-install ServiceAccount/admission',
      'post-install ClusterRoleBinding/admission',
      'post-install Role/admission',
      'post-install RoleBinding/admission',
      'post-install Job/admission-patch',
    ],
    upgrade: [
      'pre-upgrade ClusterRole/admission',
      'pre-upgrade ServiceAccount/admission',
      'pre-upgrade ClusterRoleBinding/admission',
      'pre-upgrade Role/admission',
      'pre-upgrade RoleBinding/admission',
      'pre-upgrade Job/admission-create',
      'post-upgrade ClusterRole/admission',
      'post-upgrade ServiceAccount/admission',
      'post-upgrade ClusterRoleBinding/admission',
      'post-upgrade Role/admission',
      'post-upgrade RoleBinding/admission',
      'post-upgrade Job/admission-patch',
    ],
    delete: [],
  },
};

/**
 * aws-load-balancer-controller: its webhook certificate made with genCA/genSignedCert, kept through a
 * lookup of its Secret (keepTLSSecret), the CA in the webhook's caBundle; the IngressClass in a v1 List;
 * clusterName required.
 */
const loadBalancer: AddonChart = {
  name: 'aws-load-balancer-controller',
  values: { clusterName: 'fleet-a', keepTLSSecret: true },
  files: (v) => ({
    'Chart.yaml': chartYaml('aws-load-balancer-controller', v),
    'values.yaml': stringify({ clusterName: '', keepTLSSecret: false }),
    'templates/_certs.tpl': `{{- define "lbc.certs" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (printf "%s-tls" .Release.Name) -}}
{{- if and .Values.keepTLSSecret $secret -}}
caCert: {{ index $secret.data "ca.crt" }}
clientCert: {{ index $secret.data "tls.crt" }}
clientKey: {{ index $secret.data "tls.key" }}
{{- else -}}
{{- $altNames := list (printf "%s-webhook-service.%s.svc" .Release.Name .Release.Namespace) -}}
{{- $ca := genCA "aws-load-balancer-controller-ca" 3650 -}}
{{- $cert := genSignedCert (printf "%s-webhook-service" .Release.Name) nil $altNames 3650 $ca -}}
caCert: {{ $ca.Cert | b64enc }}
clientCert: {{ $cert.Cert | b64enc }}
clientKey: {{ $cert.Key | b64enc }}
{{- end -}}
{{- end -}}`,
    'templates/serviceaccount.yaml': serviceAccount(),
    'templates/deployment.yaml': deployment('controller', 'public.ecr.aws/eks/aws-load-balancer-controller').replace(
      '          image:',
      '          args: ["--cluster-name={{ required "clusterName is required" .Values.clusterName }}"]\n          image:',
    ),
    'templates/rbac.yaml': clusterRbac('role'),
    'templates/webhook.yaml': `{{- $tls := fromYaml (include "lbc.certs" .) -}}
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: {{ .Release.Name }}-webhook
  labels:
${LABELS}
webhooks:
  - name: mpod.elbv2.addons.test
    admissionReviewVersions: ["v1"]
    sideEffects: None
    failurePolicy: Ignore
    clientConfig:
      caBundle: {{ $tls.caCert }}
      service:
        name: {{ .Release.Name }}-webhook-service
        namespace: {{ .Release.Namespace }}
        path: /mutate-v1-pod
    objectSelector:
      matchLabels:
        elbv2.addons.test/inject: {{ .Release.Name }}
    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["pods"]
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-tls
  labels:
${LABELS}
type: kubernetes.io/tls
data:
  ca.crt: {{ $tls.caCert }}
  tls.crt: {{ $tls.clientCert }}
  tls.key: {{ $tls.clientKey }}
`,
    'templates/webhook-service.yaml': service('webhook-service'),
    'templates/ingressclass.yaml': `apiVersion: v1
kind: List
items:
  - apiVersion: networking.k8s.io/v1
    kind: IngressClass
    metadata:
      name: {{ .Release.Name }}-alb
      labels:
${LABELS.replace(/^ {4}/gm, '        ')}
    spec:
      controller: ingress.k8s.aws/alb
`,
  }),
  hooks: { install: [], upgrade: [], delete: [] },
};

/** metrics-server with tls.type helm: a self-signed certificate kept through lookup. */
const metricsServer: AddonChart = {
  name: 'metrics-server',
  values: { tls: { type: 'helm' } },
  files: (v) => ({
    'Chart.yaml': chartYaml('metrics-server', v),
    'values.yaml': stringify({ tls: { type: 'metrics-server' } }),
    'templates/serviceaccount.yaml': serviceAccount(),
    'templates/deployment.yaml': deployment('metrics-server', 'registry.k8s.io/metrics-server/metrics-server'),
    'templates/service.yaml': service('metrics-server'),
    'templates/rbac.yaml': clusterRbac('system-metrics-server'),
    'templates/certificate.yaml': `{{- if eq .Values.tls.type "helm" }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (printf "%s-metrics-server" .Release.Name) }}
{{- $crt := "" }}{{- $key := "" }}
{{- if $existing }}{{- $crt = index $existing.data "tls.crt" }}{{- $key = index $existing.data "tls.key" }}
{{- else }}
{{- $cert := genSelfSignedCert (printf "%s-metrics-server.%s.svc" .Release.Name .Release.Namespace) nil nil 365 }}
{{- $crt = $cert.Cert | b64enc }}{{- $key = $cert.Key | b64enc }}
{{- end }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-metrics-server
  labels:
${LABELS}
type: kubernetes.io/tls
data:
  tls.crt: {{ $crt }}
  tls.key: {{ $key }}
{{- end }}
`,
  }),
  hooks: { install: [], upgrade: [], delete: [] },
};

/** external-dns: no hooks, no generated values. */
const externalDns: AddonChart = {
  name: 'external-dns',
  values: { provider: { name: 'aws' } },
  files: (v) => ({
    'Chart.yaml': chartYaml('external-dns', v),
    'values.yaml': stringify({ provider: { name: 'aws' }, policy: 'upsert-only' }),
    'templates/serviceaccount.yaml': serviceAccount(),
    'templates/deployment.yaml': deployment('external-dns', 'registry.k8s.io/external-dns/external-dns').replace(
      '          image:',
      '          args: ["--provider={{ .Values.provider.name }}", "--policy={{ .Values.policy }}"]\n          image:',
    ),
    'templates/rbac.yaml': clusterRbac('viewer'),
  }),
  hooks: { install: [], upgrade: [], delete: [] },
};

/** karpenter: CRDs in crds/, settings.clusterName required, a PodDisruptionBudget. */
const karpenter: AddonChart = {
  name: 'karpenter',
  values: { settings: { clusterName: 'fleet-a' } },
  files: (v) => ({
    'Chart.yaml': chartYaml('karpenter', v),
    'values.yaml': stringify({ settings: { clusterName: '' } }),
    'crds/nodepools.yaml': stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'nodepools.karpenter.addons.test' },
      spec: {
        group: 'karpenter.addons.test',
        names: { kind: 'NodePool', listKind: 'NodePoolList', plural: 'nodepools', singular: 'nodepool' },
        scope: 'Cluster',
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    }),
    'templates/serviceaccount.yaml': serviceAccount(),
    'templates/deployment.yaml': deployment('karpenter', 'public.ecr.aws/karpenter/controller').replace(
      '          image:',
      '          env:\n            - name: CLUSTER_NAME\n              value: {{ required "settings.clusterName is required" .Values.settings.clusterName | quote }}\n          image:',
    ),
    'templates/pdb.yaml': `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .Release.Name }}
  labels:
${LABELS}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
`,
    'templates/rbac.yaml': clusterRbac('core'),
  }),
  hooks: { install: [], upgrade: [], delete: [] },
};

/**
 * A Bitnami-style chart: the password managed as Bitnami's common library does (`passwords.manage`:
 * the live Secret's value, else the given one, else generated; an upgrade that finds neither fails),
 * its checksum on the StatefulSet; a pre-delete Job cleaning up before the release goes.
 */
const bitnami: AddonChart = {
  name: 'redis',
  values: {},
  files: (v) => ({
    'Chart.yaml': chartYaml('redis', v),
    'values.yaml': stringify({ auth: { password: '' } }),
    'templates/_passwords.tpl': `{{- define "common.passwords.manage" -}}
{{- $secret := lookup "v1" "Secret" .context.Release.Namespace .secret -}}
{{- if and $secret $secret.data (hasKey $secret.data .key) -}}
{{- index $secret.data .key -}}
{{- else if .providedValue -}}
{{- .providedValue | b64enc -}}
{{- else if .context.Release.IsUpgrade -}}
{{- fail "\\nPASSWORDS ERROR: You must provide your current passwords when upgrading the release." -}}
{{- else -}}
{{- randAlphaNum 10 | b64enc -}}
{{- end -}}
{{- end -}}
{{- define "redis.secret" -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-redis
  labels:
${LABELS}
type: Opaque
data:
  redis-password: {{ include "common.passwords.manage" (dict "secret" (printf "%s-redis" .Release.Name) "key" "redis-password" "providedValue" .Values.auth.password "context" $) | quote }}
{{- end -}}`,
    'templates/secret.yaml': '{{ include "redis.secret" . }}\n',
    'templates/serviceaccount.yaml': serviceAccount(),
    'templates/headless.yaml': service('headless').replace('spec:\n', 'spec:\n  clusterIP: None\n'),
    'templates/statefulset.yaml': `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-master
  labels:
${LABELS}
spec:
  replicas: 1
  serviceName: {{ .Release.Name }}-headless
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
      annotations:
        checksum/secret: {{ include "redis.secret" . | sha256sum }}
    spec:
      serviceAccountName: {{ .Release.Name }}
      containers:
        - name: redis
          image: "docker.io/bitnami/redis:{{ .Chart.AppVersion }}"
`,
    'templates/pre-delete.yaml': hookJob('cleanup', hookAnnotations('pre-delete', 0, 'hook-succeeded')).replace(
      'serviceAccountName: {{ .Release.Name }}-cleanup',
      'serviceAccountName: {{ .Release.Name }}',
    ),
  }),
  hooks: { install: [], upgrade: [], delete: ['pre-delete Job/cleanup'] },
};

export const ADDONS: readonly AddonChart[] = [
  certManager,
  gateway,
  monitoring,
  loadBalancer,
  metricsServer,
  externalDns,
  karpenter,
  bitnami,
];
