// nodemesh-identity's configuration: environment variables parsed once into a frozen, typed
// object with named defaults. A bad value is NODEMESH_E_CONFIG naming the variable.
import { DaemonErrors } from '../errors';
import { parseHostPort, positiveInt, trustDomainFrom } from './identity-client-config';
import { DEFAULT_MAX_TTL_SECONDS } from './identity-server';

export interface IdentityServiceConfig {
  /** NODEMESH_IDENTITY_LISTEN (host:port; port 0 = ephemeral, for tests). */
  listenHost: string;
  listenPort: number;
  /** NODEMESH_CA_DIR: ca.key + ca.crt; created there if the directory holds no CA. Sandbox:
   * required. Kubernetes: optional (a mounted Secret); without it the CA is read through the API. */
  caDir: string;
  /** NODEMESH_TRUST_DOMAIN */
  trustDomain: string;
  /** NODEMESH_SOURCE (+ NODEMESH_SANDBOX_OBJECTS): where pods, hence node binding, come from. */
  source: { kind: 'sandbox'; objectsDir: string } | KubeIdentitySource;
  /** NODEMESH_NODE_CREDENTIALS: JSON {node: token}, minted by `nodemesh local up` (sandbox only). */
  nodeCredentialsFile: string;
  /** NODEMESH_CERT_MAX_TTL_SECONDS: upper bound of any workload certificate. */
  maxCertTtlSeconds: number;
  /** NODEMESH_IDENTITY_DNS_NAMES (comma-separated): extra DNS SANs of the serving certificate,
   * e.g. the Service name clients dial. */
  servingDnsNames: string[];
  /** NODEMESH_LOG_LEVEL */
  logLevel: string;
}

/** Kubernetes: node daemons authenticate with projected tokens (TokenReview), node binding
 * and the CA come from the API. */
export interface KubeIdentitySource {
  kind: 'kube';
  /** NODEMESH_KUBECONFIG: a kubeconfig file; empty = in-cluster (the pod's ServiceAccount). */
  kubeconfig: string;
  /** NODEMESH_CA_SECRET (namespace/name): the CA, read (and filled if empty) through the API. */
  caSecret: { namespace: string; name: string };
  /** NODEMESH_CA_ROOT_CONFIGMAP (namespace/name): where the root is published for the nodes. */
  caRootConfigMap: { namespace: string; name: string };
  /** NODEMESH_TOKEN_AUDIENCE */
  audience: string;
  /** NODEMESH_NODE_SERVICE_ACCOUNT (namespace/name): the only ServiceAccount accepted. */
  nodeServiceAccount: { namespace: string; name: string };
}

function namespacedName(env: NodeJS.ProcessEnv, field: string, dflt: string): { namespace: string; name: string } {
  const v = env[field] || dflt;
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(v);
  if (!m) throw DaemonErrors.NODEMESH_E_CONFIG({ field, value: v, expected: '<namespace>/<name>' });
  return Object.freeze({ namespace: m[1], name: m[3] });
}

export const IDENTITY_SERVICE_DEFAULTS = Object.freeze({
  listen: '0.0.0.0:15012',
  maxCertTtlSeconds: DEFAULT_MAX_TTL_SECONDS,
  logLevel: 'info',
});

export function loadIdentityConfig(env: NodeJS.ProcessEnv = process.env): Readonly<IdentityServiceConfig> {
  const listen = env.NODEMESH_IDENTITY_LISTEN || IDENTITY_SERVICE_DEFAULTS.listen;
  const { host: listenHost, port: listenPort } = parseHostPort(listen, 'NODEMESH_IDENTITY_LISTEN', { allowPortZero: true });

  const caDir = env.NODEMESH_CA_DIR || '';
  const src = env.NODEMESH_SOURCE || 'kube';
  if (src !== 'sandbox' && src !== 'kube') throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_SOURCE', value: src, expected: "'kube' or 'sandbox'" });
  let source: IdentityServiceConfig['source'];
  let nodeCredentialsFile = '';
  if (src === 'kube') {
    source = Object.freeze({
      kind: 'kube' as const,
      kubeconfig: env.NODEMESH_KUBECONFIG || '',
      caSecret: namespacedName(env, 'NODEMESH_CA_SECRET', 'nodemesh-system/nodemesh-ca'),
      caRootConfigMap: namespacedName(env, 'NODEMESH_CA_ROOT_CONFIGMAP', 'nodemesh-system/nodemesh-ca-root'),
      audience: env.NODEMESH_TOKEN_AUDIENCE || 'nodemesh-identity',
      nodeServiceAccount: namespacedName(env, 'NODEMESH_NODE_SERVICE_ACCOUNT', 'nodemesh-system/nodemesh-node'),
    });
  } else {
    if (!caDir) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_CA_DIR', value: '', expected: 'the directory holding (or to hold) the mesh CA, ca.key and ca.crt' });
    const objectsDir = env.NODEMESH_SANDBOX_OBJECTS || '';
    if (!objectsDir) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_SANDBOX_OBJECTS', value: '', expected: 'the sandbox object directory (set by nodemesh local up)' });
    nodeCredentialsFile = env.NODEMESH_NODE_CREDENTIALS || '';
    if (!nodeCredentialsFile) {
      throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_NODE_CREDENTIALS', value: '', expected: 'the node credential file, JSON {"<node>": "<token>"} (minted by nodemesh local up)' });
    }
    source = Object.freeze({ kind: 'sandbox' as const, objectsDir });
  }

  const servingDnsNames = (env.NODEMESH_IDENTITY_DNS_NAMES || '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const d of servingDnsNames) {
    if (!/^[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(d)) {
      throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_IDENTITY_DNS_NAMES', value: env.NODEMESH_IDENTITY_DNS_NAMES ?? '', expected: 'a comma-separated list of DNS names' });
    }
  }

  return Object.freeze({
    listenHost,
    listenPort,
    caDir,
    trustDomain: trustDomainFrom(env),
    source,
    nodeCredentialsFile,
    maxCertTtlSeconds: positiveInt(env, 'NODEMESH_CERT_MAX_TTL_SECONDS', IDENTITY_SERVICE_DEFAULTS.maxCertTtlSeconds),
    servingDnsNames: Object.freeze(servingDnsNames) as string[],
    logLevel: env.NODEMESH_LOG_LEVEL || IDENTITY_SERVICE_DEFAULTS.logLevel,
  });
}
