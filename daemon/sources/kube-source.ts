// State source for a real cluster: one informer per kind (kube-informer.ts), their events
// coalesced into one batch per turn of the event loop, so a relist of 10,000 pods is one
// snapshot, not 10,000.
//
// Pods: every pod of the cluster, not only this node's. The daemon needs each meshed pod's IP,
// node and service account wherever it runs: to choose HBONE for a pod IP that no Service
// fronts, to check the SPIFFE ID the peer presents, and to name the source of inbound
// plaintext. EndpointSlices carry IPs and nodes but no service account, and only for pods
// behind a Service. So the watch covers all pods except finished ones (a field selector on
// status.phase: completed Jobs are most of a big cluster's pods), and each is trimmed to what
// the mesh reads (convert.ts) before it is cached: a few hundred bytes per pod.
//
// Kinds whose CRDs may be absent (nodemesh's security CRDs, Gateway API) are found through
// discovery and looked for again periodically; a CRD removed later drops its objects.
import type { Logger } from 'pino';
import type { ResourceKind } from '../state/resources';
import type { SkippedObject, SourceBatch, SourceChange, StateSource } from './source';
import { ACCEPT_ALL, ObjectValidator } from './convert';
import { ApiRequestError, KubeHttp } from './kube-client';
import { DEFAULT_TUNING, InformerTuning, KindInformer, KindSpec } from './kube-informer';

interface OptionalKind extends Omit<KindSpec, 'apiVersion' | 'path'> {
  group: string;
  /** Versions to try, preferred first; the first served one is watched. */
  versions: string[];
  plural: string;
}

const REQUIRED: KindSpec[] = [
  { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces' },
  { kind: 'Pod', apiVersion: 'v1', path: '/api/v1/pods', fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' },
  { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services' },
  { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', path: '/apis/discovery.k8s.io/v1/endpointslices' },
];

const OPTIONAL: OptionalKind[] = [
  { kind: 'AuthorizationPolicy', group: 'security.nodemesh.io', versions: ['v1alpha1'], plural: 'authorizationpolicies' },
  { kind: 'PeerAuthentication', group: 'security.nodemesh.io', versions: ['v1alpha1'], plural: 'peerauthentications' },
  { kind: 'Gateway', group: 'gateway.networking.k8s.io', versions: ['v1'], plural: 'gateways' },
  { kind: 'HTTPRoute', group: 'gateway.networking.k8s.io', versions: ['v1'], plural: 'httproutes' },
  { kind: 'GRPCRoute', group: 'gateway.networking.k8s.io', versions: ['v1', 'v1alpha2'], plural: 'grpcroutes' },
  { kind: 'BackendTrafficPolicy', group: 'policy.nodemesh.io', versions: ['v1alpha1'], plural: 'backendtrafficpolicies' },
];

export interface KubeSourceOptions {
  http: KubeHttp;
  log: Logger;
  validate?: ObjectValidator;
  /** How often absent CRDs are looked for again. */
  discoveryIntervalMs?: number;
  tuning?: Partial<InformerTuning>;
  /** Called for every list/watch failure (metric). */
  onApiError?: (kind: ResourceKind) => void;
  /** Only these kinds are watched (a waypoint needs fewer than a node daemon, and its
   * ServiceAccount may read only those); default: every kind. */
  kinds?: readonly ResourceKind[];
}

export class KubeSource implements StateSource {
  readonly name: string;
  private readonly informers = new Map<ResourceKind, KindInformer>();
  /** Optional kinds known absent after discovery answered: synced, with no objects. */
  private readonly absent = new Set<ResourceKind>();
  private onBatch: ((b: SourceBatch) => void) | undefined;
  private pending: { changes: SourceChange[]; synced: ResourceKind[]; skipped: SkippedObject[] } = { changes: [], synced: [], skipped: [] };
  private flushScheduled = false;
  private discovery: NodeJS.Timeout | undefined;
  private discovering = false;
  private allSynced: (() => void) | undefined;
  private stopped = false;
  private readonly tuning: InformerTuning;
  private readonly validate: ObjectValidator;
  private readonly required: KindSpec[];
  private readonly optional: OptionalKind[];

  constructor(private readonly opts: KubeSourceOptions) {
    this.name = `kube:${opts.http.server}`;
    const wanted = (k: { kind: ResourceKind }) => !opts.kinds || opts.kinds.includes(k.kind);
    this.required = REQUIRED.filter(wanted);
    this.optional = OPTIONAL.filter(wanted);
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    this.validate = opts.validate ?? ACCEPT_ALL;
  }

  start(onBatch: (b: SourceBatch) => void): Promise<void> {
    this.onBatch = onBatch;
    const done = new Promise<void>((resolve) => { this.allSynced = resolve; });
    for (const spec of this.required) this.startInformer(spec);
    void this.discover();
    this.discovery = setInterval(() => void this.discover(), this.opts.discoveryIntervalMs ?? 60_000);
    this.discovery.unref();
    return done;
  }

  stop(): void {
    this.stopped = true;
    if (this.discovery) clearInterval(this.discovery);
    for (const inf of this.informers.values()) inf.stop();
    this.informers.clear();
    this.onBatch = undefined;
  }

  private startInformer(spec: KindSpec): void {
    const inf = new KindInformer(spec, this.opts.http, this.validate, {
      changes: (c) => { this.pending.changes.push(...c); this.schedule(); },
      skipped: (s) => { this.pending.skipped.push(s); this.schedule(); },
      synced: () => { this.pending.synced.push(spec.kind); this.schedule(); },
      failed: (e) => {
        this.opts.onApiError?.(spec.kind);
        // An optional kind whose CRD went away: drop it and look for it again later.
        if (e.statusCode === 404 && !this.required.some((r) => r.kind === spec.kind)) this.dropOptional(spec.kind);
      },
    }, this.opts.log.child({ component: 'informer', kind: spec.kind }), this.tuning);
    this.informers.set(spec.kind, inf);
    inf.start();
  }

  private dropOptional(kind: ResourceKind): void {
    const inf = this.informers.get(kind);
    if (!inf) return;
    this.informers.delete(kind);
    const known = inf.stop();
    this.opts.log.info({ kind, objects: known.length }, 'resource no longer served (CRD removed?); dropping its objects');
    for (const o of known) this.pending.changes.push({ op: 'delete', kind, namespace: o.metadata?.namespace, name: o.metadata?.name ?? '' });
    this.schedule();
  }

  /** Which optional kinds the API serves now (the APIResourceList of each group version). */
  private async discover(): Promise<void> {
    if (this.discovering || this.stopped) return;
    this.discovering = true;
    try {
      const served = new Map<string, Set<string>>();
      const resources = async (gv: string): Promise<Set<string> | undefined> => {
        if (served.has(gv)) return served.get(gv);
        try {
          const body = await this.opts.http.getJson(`/apis/${gv}`) as { resources?: { name?: unknown }[] };
          const names = new Set((body.resources ?? []).map((r) => r.name).filter((n): n is string => typeof n === 'string'));
          served.set(gv, names);
          return names;
        } catch (e) {
          // 404 (plain text "404 page not found"): the group version is not installed.
          if (e instanceof ApiRequestError && e.statusCode === 404) { served.set(gv, new Set()); return served.get(gv); }
          throw e;
        }
      };
      for (const k of this.optional) {
        if (this.informers.has(k.kind)) continue;
        let found: string | undefined;
        for (const v of k.versions) {
          if ((await resources(`${k.group}/${v}`))?.has(k.plural)) { found = v; break; }
        }
        if (this.stopped) return;
        if (found) {
          this.absent.delete(k.kind);
          this.opts.log.info({ kind: k.kind, version: `${k.group}/${found}` }, 'resource served; watching it');
          this.startInformer({ kind: k.kind, apiVersion: `${k.group}/${found}`, path: `/apis/${k.group}/${found}/${k.plural}` });
        } else if (!this.absent.has(k.kind)) {
          this.absent.add(k.kind);
          this.opts.log.info({ kind: k.kind, group: k.group }, 'resource not served (CRD not installed); none in force, looking again later');
          this.pending.synced.push(k.kind);
          this.schedule();
        }
      }
    } catch (e) {
      // Discovery failed (API server away): nothing is decided; the next round tries again.
      this.opts.log.warn({ err: (e as Error).message }, 'discovery failed; retrying');
      setTimeout(() => void this.discover(), this.tuning.backoff.initialMs * 4).unref();
    } finally {
      this.discovering = false;
    }
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const b = this.pending;
    this.pending = { changes: [], synced: [], skipped: [] };
    if (!this.onBatch) return;
    this.onBatch({ changes: b.changes, synced: b.synced, skipped: b.skipped });
    if (this.allSynced && this.isSynced()) {
      const resolve = this.allSynced;
      this.allSynced = undefined;
      resolve();
    }
  }

  /** Every required kind listed, every optional kind listed or known absent. */
  private isSynced(): boolean {
    for (const r of this.required) if (!this.informers.get(r.kind)?.synced) return false;
    for (const k of this.optional) if (!this.absent.has(k.kind) && !this.informers.get(k.kind)?.synced) return false;
    return true;
  }
}
