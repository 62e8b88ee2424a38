// Kubernetes authentication for nodemesh-identity: a caller presents its projected
// ServiceAccount token (audience nodemesh-identity); a TokenReview (authentication.k8s.io/v1)
// with that audience tells who it is. Two kinds of callers are accepted:
// - the node daemon's own ServiceAccount: the calling node is the one the token is bound to
//   (the review's user.extra names it for pod-bound tokens, authentication.kubernetes.io/node-name;
//   failing that, the bound pod's spec.nodeName);
// - a waypoint's ServiceAccount, for its own identity only (waypoint-caller.ts decides).
// Every other token is refused, saying why.
import type { Metadata } from '@grpc/grpc-js';
import type { KubeConfig } from '@kubernetes/client-node';
import { bearerToken, type Caller, type NodeAuthenticator } from './node-credentials';
import { kubeRequest, statusMessage } from './kube-rest';
import { DaemonErrors } from '../errors';
import { checkWaypointGateway, checkWaypointPod, type ApiGateway, type ApiPod, type BoundToken, type WaypointCaller } from './waypoint-caller';

export const EXTRA_NODE_NAME = 'authentication.kubernetes.io/node-name';
export const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
export const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';
const SA_USER = /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;

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
  /** Another ServiceAccount's pod-bound token: a waypoint's, if its pod says so. */
  | { ok: true; node?: undefined; pod?: undefined; waypoint: BoundToken }
  | { ok: false; reason: string };

const single = (v: string[] | undefined): string | undefined => (v && v.length === 1 && v[0] ? v[0] : undefined);

/** Pure: what a TokenReview status means for a node daemon's call. */
export function decideTokenReview(status: TokenReviewStatus | undefined, policy: TokenReviewPolicy): ReviewDecision {
  if (!status?.authenticated) return { ok: false, reason: `the Kubernetes API did not authenticate the token (${status?.error || 'no reason given'})` };
  // A review without audiences in its status means the API checked only its own audience:
  // refuse rather than trust a token minted for the API server.
  if (!status.audiences?.includes(policy.audience)) return { ok: false, reason: `the token is not for audience ${policy.audience}` };
  const want = `system:serviceaccount:${policy.serviceAccount.namespace}:${policy.serviceAccount.name}`;
  const user = status.user?.username ?? '';
  if (user !== want) {
    const sa = SA_USER.exec(user);
    const pod = single(status.user?.extra?.[EXTRA_POD_NAME]);
    if (sa && pod) return { ok: true, waypoint: { namespace: sa[1], serviceAccount: sa[3], pod, podUid: single(status.user?.extra?.[EXTRA_POD_UID]) } };
    return { ok: false, reason: `the token belongs to ${user.slice(0, 200) || 'an unnamed user'}, not to the node daemon's service account ${want}, nor to a waypoint's (${sa ? 'not bound to a pod' : 'not a service account'})` };
  }
  const node = status.user?.extra?.[EXTRA_NODE_NAME];
  if (node && node.length === 1 && node[0]) return { ok: true, node: node[0] };
  const pod = status.user?.extra?.[EXTRA_POD_NAME];
  if (pod && pod.length === 1 && pod[0]) return { ok: true, pod: { namespace: policy.serviceAccount.namespace, name: pod[0] } };
  return { ok: false, reason: 'the token is not bound to a pod (use the projected ServiceAccount token of the nodemesh-node pod)' };
}

export interface TokenReviewApi {
  review(token: string, audience: string): Promise<TokenReviewStatus | undefined>;
  /** A pod, undefined when it does not exist. */
  pod(namespace: string, name: string): Promise<ApiPod | undefined>;
  /** A Gateway, undefined when it (or the Gateway API) does not exist. */
  gateway(namespace: string, name: string): Promise<ApiGateway | undefined>;
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
    async pod(namespace, name) {
      return getObject(kc, `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, `pod ${namespace}/${name}`);
    },
    async gateway(namespace, name) {
      return getObject(kc, `/apis/gateway.networking.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/gateways/${encodeURIComponent(name)}`, `Gateway ${namespace}/${name}`);
    },
  };
}

async function getObject<T>(kc: KubeConfig, path: string, what: string): Promise<T | undefined> {
  const res = await kubeRequest(kc, { method: 'GET', path });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`reading ${what} failed: HTTP ${res.status}: ${statusMessage(res)}`);
  return res.body as T;
}

export class TokenReviewAuthenticator implements NodeAuthenticator {
  constructor(private readonly api: TokenReviewApi, private readonly policy: TokenReviewPolicy) {}

  async authenticate(metadata: Metadata): Promise<Caller> {
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
    if (d.pod === undefined) return { waypoint: await this.waypoint(d.waypoint) };
    const node = (await this.read(() => this.api.pod(d.pod.namespace, d.pod.name), "the token's pod"))?.spec?.nodeName;
    if (!node) throw DaemonErrors.NODEMESH_E_IDENTITY_UNAUTHENTICATED({ reason: `the token's pod ${d.pod.namespace}/${d.pod.name} no longer exists or is not scheduled` });
    return { node };
  }

  private async read<T>(f: () => Promise<T>, what: string): Promise<T> {
    try {
      return await f();
    } catch (e) {
      // The API is away: the caller retries; nothing is issued meanwhile.
      throw DaemonErrors.NODEMESH_E_IDENTITY_NOT_READY({ reason: `cannot read ${what}: ${(e as Error).message}` }, { cause: e });
    }
  }

  private async waypoint(t: BoundToken): Promise<WaypointCaller> {
    const refuse = (reason: string) => DaemonErrors.NODEMESH_E_IDENTITY_UNAUTHENTICATED({
      reason: `the token belongs to system:serviceaccount:${t.namespace}:${t.serviceAccount}, not to the node daemon's service account; as a waypoint's it is refused: ${reason}`,
    });
    const byPod = checkWaypointPod(t, await this.read(() => this.api.pod(t.namespace, t.pod), "the token's pod"));
    if (!byPod.ok) throw refuse(byPod.reason);
    const byGateway = checkWaypointGateway(t.namespace, byPod.gateway, await this.read(() => this.api.gateway(t.namespace, byPod.gateway), 'the Gateway'));
    if (!byGateway.ok) throw refuse(byGateway.reason);
    return { namespace: t.namespace, serviceAccount: t.serviceAccount, gateway: byPod.gateway, pod: t.pod };
  }
}
