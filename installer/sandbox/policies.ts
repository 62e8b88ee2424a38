// AuthorizationPolicy and PeerAuthentication in the sandbox. They are plain objects in the
// object directory, like Pods and Services; what is particular to them is that `local apply`
// and `local delete` return only once every node daemon shows the new state in its
// `GET /debug/snapshot` (its `authorizationPolicies` / `peerAuthentications`), so a policy
// is in force when the command returns, and how `local status` summarises them.
import { enforcementOf } from '../../daemon/policy/enforcement';
import { ROOT_NAMESPACE } from '../../daemon/state/resources';
import { InstallerErrors } from '../errors';
import { adminGet } from './admin-client';
import { canonical, type Policy } from './apply-plan';
import { isAlive, sleep } from './host';
import { POD_CONFIRM_TIMEOUT_MS } from './pods';
import type { NodeRecord } from './state';

export const POLICY_CONFIRM_TIMEOUT_MS = Number(process.env.NODEMESH_SANDBOX_POLICY_CONFIRM_TIMEOUT_MS) || POD_CONFIRM_TIMEOUT_MS;

/** `AuthorizationPolicy shop/allow-web`: how policies are keyed here and in messages. */
export const policyKey = (p: { kind: string; metadata: { namespace?: string; name: string } }): string =>
  `${p.kind} ${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;

/** The part of a daemon's GET /debug/snapshot this file reads (daemon/node-agent.ts). */
export interface DaemonSnapshotPolicies {
  version?: number;
  authorizationPolicies?: unknown;
  peerAuthentications?: unknown;
}

/** Keys of `want` the snapshot does not reflect yet: a wanted object must be there with the
 * same content, an undefined one (deleted) must be gone. Pure. Throws when the snapshot
 * has no policy fields at all (a daemon that cannot show them would never catch up). */
export function notYetReflected(snap: DaemonSnapshotPolicies, want: ReadonlyMap<string, Policy | undefined>): string[] {
  if (!Array.isArray(snap.authorizationPolicies) || !Array.isArray(snap.peerAuthentications)) {
    throw new Error('its GET /debug/snapshot has no authorizationPolicies/peerAuthentications lists');
  }
  const seen = new Map<string, string>();
  for (const o of [...snap.authorizationPolicies, ...snap.peerAuthentications] as Policy[]) seen.set(policyKey(o), canonical(o));
  const out: string[] = [];
  for (const [k, obj] of want) {
    const have = seen.get(k);
    if (obj === undefined ? have !== undefined : have !== canonical(obj)) out.push(k);
  }
  return out;
}

/** Waits until every node daemon's snapshot reflects `want`. A daemon that is not running,
 * or whose snapshot has no policy lists, fails at once; the rest are given `timeoutMs`. A
 * stand-in daemon (NODEMESH_DAEMON_COMMAND) without /debug/snapshot is skipped, with a note. */
export async function waitForPolicies(nodes: readonly NodeRecord[], want: ReadonlyMap<string, Policy | undefined>,
  opts: { timeoutMs?: number; info?: (line: string) => void; checkpoint?: () => void } = {}): Promise<void> {
  if (want.size === 0) return;
  const timeoutMs = opts.timeoutMs ?? POLICY_CONFIRM_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const pending = new Map<string, string>(nodes.map((n) => [n.name, 'no answer yet']));
  const failed = new Map<string, string>();
  for (;;) {
    opts.checkpoint?.();
    for (const n of nodes) {
      if (!pending.has(n.name)) continue;
      if (!isAlive(n.daemon)) {
        pending.delete(n.name);
        failed.set(n.name, `its nodemesh-node daemon is not running (log ${n.log})`);
        continue;
      }
      try {
        const r = await adminGet(n.adminSocket, '/debug/snapshot', 2000);
        if (r.status === 404) {
          opts.info?.(`${n.name}: the daemon serves no /debug/snapshot (a stand-in?); not waiting for it to show the policies`);
          pending.delete(n.name);
          continue;
        }
        if (r.status !== 200) {
          pending.set(n.name, `GET /debug/snapshot answered ${r.status}: ${r.body.trim().slice(0, 200)}`);
          continue;
        }
        const snap = JSON.parse(r.body) as DaemonSnapshotPolicies;
        let missing: string[];
        try {
          missing = notYetReflected(snap, want);
        } catch (e) {
          pending.delete(n.name);
          failed.set(n.name, (e as Error).message);
          continue;
        }
        if (missing.length === 0) pending.delete(n.name);
        else pending.set(n.name, `snapshot version ${snap.version ?? '?'} does not show the new state of ${missing.join(', ')}`);
      } catch (e) {
        pending.set(n.name, `GET /debug/snapshot failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    if (pending.size === 0 && failed.size === 0) return;
    if (pending.size === 0 || Date.now() > deadline) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_POLICY_PENDING({
        seconds: Math.round(timeoutMs / 1000),
        problems: [...failed, ...pending].map(([node, why]) => `${node}: ${why}`),
      });
    }
    await sleep(100);
  }
}

// --- status ------------------------------------------------------------------------------

export interface PolicyStatus {
  kind: string;
  namespace: string;
  name: string;
  generation: number | null;
  /** `mesh-wide`, `namespace <ns>`, `app=api,tier=x`, or `Service/api` (enforced by a waypoint). */
  appliesTo: string;
  summary: string;
}

const labelsText = (l: Readonly<Record<string, string>> | undefined): string =>
  Object.entries(l ?? {}).map(([k, v]) => `${k}=${v}`).join(',');

/** One line about a policy for `local status`. Pure. */
export function describePolicy(p: Policy): PolicyStatus {
  const namespace = p.metadata.namespace ?? 'default';
  const selector = labelsText(p.spec?.selector?.matchLabels);
  const base = { kind: p.kind, namespace, name: p.metadata.name, generation: p.metadata.generation ?? null };
  const scope = selector ? `${namespace === ROOT_NAMESPACE ? 'any namespace, ' : ''}${selector}` : namespace === ROOT_NAMESPACE ? 'mesh-wide' : `namespace ${namespace}`;
  if (p.kind === 'AuthorizationPolicy') {
    const refs = p.spec?.targetRefs ?? [];
    const action = p.spec?.action ?? 'ALLOW';
    const rules = p.spec?.rules ?? [];
    const summary = rules.length === 0
      ? (action === 'ALLOW' ? 'ALLOW, no rules: denies everything it applies to' : 'DENY, no rules: matches nothing')
      : `${action}, ${rules.length} rule${rules.length === 1 ? '' : 's'}`;
    if (refs.length > 0) {
      return { ...base, appliesTo: refs.map((r) => `${r.kind}/${r.name}`).join(','), summary: `${summary} (enforced ${enforcementOf(p).detail})` };
    }
    return { ...base, appliesTo: scope, summary };
  }
  const ports = Object.entries(p.spec?.portLevelMtls ?? {}).map(([port, m]) => `${port}:${m.mode ?? 'UNSET'}`);
  return { ...base, appliesTo: scope, summary: `mtls ${p.spec?.mtls?.mode ?? 'UNSET'}${ports.length ? `, ports ${ports.join(',')}` : ''}` };
}
