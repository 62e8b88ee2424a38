// Kubernetes node authentication for nodemesh-identity: a node daemon presents its projected
// ServiceAccount token (audience nodemesh-identity); a TokenReview (authentication.k8s.io/v1)
// with that audience tells who it is. Only the node daemon's own ServiceAccount is accepted,
// and the calling node is the one the token is bound to: the review's user.extra names it for
// pod-bound tokens (authentication.kubernetes.io/node-name); failing that, the bound pod
// (pod-name) is looked up and its spec.nodeName used.
import type { Metadata } from '@grpc/grpc-js';
import type { KubeConfig } from '@kubernetes/client-node';
import { bearerToken, type NodeAuthenticator } from './node-credentials';
import { kubeRequest, statusMessage } from './kube-rest';
import { DaemonErrors } from '../errors';

export const EXTRA_NODE_NAME = 'authentication.kubernetes.io/node-name';
export const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';

export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}

export interface TokenReviewPolicy {
  /** The audience the token must carry (and the review asks for). */
  audience: string;
  /** The only ServiceAccount accepted: the node daemon's. */
  serviceAccount: { namespace: string; name: string };
}

export type ReviewDecision =
  | { ok: true; node: string }
  | { ok: true; node?: undefined; pod: { namespace: string; name: string } }
  | { ok: false; reason: string };

/** Pure: what a TokenReview status means for a node daemon's call. */
export function decideTokenReview(status: TokenReviewStatus | undefined, policy: TokenReviewPolicy): ReviewDecision {
  if (!status?.authenticated) return { ok: false, reason: `the Kubernetes API did not authenticate the token (${status?.error || 'no reason given'})` };
  // A review without audiences in its status means the API checked only its own audience:
  // refuse rather than trust a token minted for the API server.
  if (!status.audiences?.includes(policy.audience)) return { ok: false, reason: `the token is not for audience ${policy.audience}` };
  const want = `system:serviceaccount:${policy.serviceAccount.namespace}:${policy.serviceAccount.name}`;
  const user = status.user?.username ?? '';
  if (user !== want) return { ok: false, reason: `the token belongs to ${user || 'an unnamed user'}, not to the node daemon's service account ${want}` };
  const node = status.user?.extra?.[EXTRA_NODE_NAME];
  if (node && node.length === 1 && node[0]) return { ok: true, node: node[0] };
  const pod = status.user?.extra?.[EXTRA_POD_NAME];
  if (pod && pod.length === 1 && pod[0]) return { ok: true, pod: { namespace: policy.serviceAccount.namespace, name: pod[0] } };
  return { ok: false, reason: 'the token is not bound to a pod (use the projected ServiceAccount token of the nodemesh-node pod)' };
}

export interface TokenReviewApi {
  review(token: string, audience: string): Promise<TokenReviewStatus | undefined>;
  /** spec.nodeName of a pod, undefined when the pod does not exist. */
  podNode(namespace: string, name: string): Promise<string | undefined>;
}

/** The API calls, with the identity service's own credentials. */
export function kubeTokenReviewApi(kc: KubeConfig): TokenReviewApi {
  return {
    async review(token, audience) {
      const res = await kubeRequest(kc, {
        method: 'POST', path: '/apis/authentication.k8s.io/v1/tokenreviews',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } },
      });
      if (res.status !== 201 && res.status !== 200) throw new Error(`TokenReview failed: HTTP ${res.status}: ${statusMessage(res)}`);
      return (res.body as { status?: TokenReviewStatus }).status;
    },
    async podNode(namespace, name) {
      const res = await kubeRequest(kc, { method: 'GET', path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}` });
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw new Error(`reading pod ${namespace}/${name} failed: HTTP ${res.status}: ${statusMessage(res)}`);
      return (res.body as { spec?: { nodeName?: string } }).spec?.nodeName || undefined;
    },
  };
}

export class TokenReviewAuthenticator implements NodeAuthenticator {
  constructor(private readonly api: TokenReviewApi, private readonly policy: TokenReviewPolicy) {}

  async authenticate(metadata: Metadata): Promise<{ node: string }> {
    const token = bearerToken(metadata);
    let status: TokenReviewStatus | undefined;
    try {
      status = await this.api.review(token, this.policy.audience);
    } catch (e) {
      // The API is away: the caller retries; nothing is issued meanwhile.
      throw DaemonErrors.NODEMESH_E_IDENTITY_NOT_READY({ reason: `cannot review the token: ${(e as Error).message}` }, { cause: e });
    }
    const d = decideTokenReview(status, this.policy);
    if (!d.ok) throw DaemonErrors.NODEMESH_E_IDENTITY_UNAUTHENTICATED({ reason: d.reason });
    if (d.node !== undefined) return { node: d.node };
    let node: string | undefined;
    try {
      node = await this.api.podNode(d.pod.namespace, d.pod.name);
    } catch (e) {
      throw DaemonErrors.NODEMESH_E_IDENTITY_NOT_READY({ reason: `cannot read the token's pod: ${(e as Error).message}` }, { cause: e });
    }
    if (!node) throw DaemonErrors.NODEMESH_E_IDENTITY_UNAUTHENTICATED({ reason: `the token's pod ${d.pod.namespace}/${d.pod.name} no longer exists or is not scheduled` });
    return { node };
  }
}
