// The waypoint controller (Kubernetes): Gateways of class nodemesh-waypoint become the
// installer's waypoint Deployment, Service, ServiceAccount, CA root copy (server-side apply,
// owned by the Gateway) and RBAC binding (cluster-scoped: found by label when the Gateway goes), Gateways get Accepted/Programmed and their address, the GatewayClass is accepted,
// and HTTPRoutes/GRPCRoutes with Service parents get status.parents. Level-triggered: any
// change in a watched cache schedules one reconcile of everything, which computes the desired
// state with the pure modules next door and writes only what differs. Every replica watches;
// only the Lease holder writes.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ManifestValues } from '../../installer/manifests/values';
import { WAYPOINT_CONTROLLER_NAME } from '../../installer/manifests/waypoint-controller-rbac';
import { kubeRequest, statusMessage } from '../identity/kube-rest';
import { kubeTime, sameIgnoringTimes, withoutTimes } from './conditions';
import { classifyGateway, desiredWaypointObjects, owningGateway, WAYPOINT_OBJECT_SELECTOR } from './gateway-objects';
import { gatewayClassStatus, gatewayStatus } from './gateway-status';
import { FIELD_MANAGER, WAYPOINT_CLASS, keyOf, type KubeObject } from './kube-object';
import { LeaderLease } from './leader-lease';
import { ResourceCache } from './resource-cache';
import { routeParentStatuses, type RouteLookups } from './route-parent-status';
import { keyFingerprint, keysDocument, publishedIds, waypointKey, type WaypointKey } from './caller-statement-keys';
import { parseSpiffeId, spiffeId } from '../identity/ca';
import { toPlain } from '../../installer/manifests/render';
import { WAYPOINT_KEYS_CONFIGMAP_NAME } from '../../installer/manifests/values';
import { WAYPOINT_KEYS_ENTRY, waypointKeysConfigMap, waypointSigningKeyName } from '../../installer/manifests/waypoint-objects';

const signingMaterial = (k: WaypointKey) => ({ secretKey: Buffer.from(k.secretKey).toString('base64url'), fingerprint: keyFingerprint(k.publicKey) });

const GW = '/apis/gateway.networking.k8s.io/v1';

export const WAYPOINT_CONTROLLER_DEFAULTS = Object.freeze({
  leaseName: WAYPOINT_CONTROLLER_NAME,
  leaseDurationSeconds: 15,
  /** Everything is applied again this often, so a hand edit of a waypoint object is put back. */
  resyncMs: 300_000,
  retryPeriodMs: 2000,
  backoff: { initialMs: 500, maxMs: 30_000 },
});

export interface WaypointControllerOptions {
  kc: KubeConfig;
  values: ManifestValues;
  log: Logger;
  /** Where the Lease lives (nodemesh-identity's namespace). */
  leaseNamespace: string;
  /** This replica's name in the Lease (the pod name). */
  identity: string;
  /** The mesh CA root (PEM), copied beside each waypoint for its identity client. */
  caRootPem: string;
  /** Where each waypoint's caller-statement key is derived from (caller-statement-keys.ts). */
  keyMaster: Buffer;
  leaseName?: string;
  leaseDurationSeconds?: number;
  retryPeriodMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  resyncMs?: number;
}

export interface WaypointControllerStats {
  reconciles: number;
  writes: number;
  writeFailures: number;
  malformedObjects: number;
  otherClassGateways: number;
}

/** The REST path of one object. */
function objectPath(o: KubeObject): string {
  const api = o.apiVersion ?? 'v1';
  const base = api.includes('/') ? `/apis/${api}` : `/api/${api}`;
  const plural = { ServiceAccount: 'serviceaccounts', Deployment: 'deployments', Service: 'services', ConfigMap: 'configmaps', Secret: 'secrets', ClusterRoleBinding: 'clusterrolebindings' }[o.kind ?? ''] ?? `${(o.kind ?? '').toLowerCase()}s`;
  if (!o.metadata.namespace) return `${base}/${plural}/${encodeURIComponent(o.metadata.name)}`;
  return `${base}/namespaces/${o.metadata.namespace}/${plural}/${o.metadata.name}`;
}

export class WaypointController {
  readonly stats: WaypointControllerStats = { reconciles: 0, writes: 0, writeFailures: 0, malformedObjects: 0, otherClassGateways: 0 };
  private readonly caches: Record<'gateways' | 'gatewayClasses' | 'httpRoutes' | 'grpcRoutes' | 'services' | 'namespaces' | 'deployments' | 'serviceAccounts' | 'configMaps' | 'clusterRoleBindings' | 'keys', ResourceCache>;
  private readonly lease: LeaderLease;
  private readonly log: Logger;
  /** What was last applied per object, so an unchanged object is not applied again. */
  private readonly applied = new Map<string, string>();
  /** The status last written per object version: a pass that runs before the object's own
   * watch event arrives does not write it again (it would only get a 409). */
  private readonly statusWritten = new Map<string, string>();
  private readonly reported = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  private running = false;
  private dirty = false;
  private stopped = true;
  private failures = 0;

  constructor(private readonly o: WaypointControllerOptions) {
    this.log = o.log.child({ component: 'waypoint-controller' });
    const cache = (path: string, labelSelector?: string) => new ResourceCache(o.kc, {
      path, labelSelector, log: this.log, backoff: o.backoff ?? WAYPOINT_CONTROLLER_DEFAULTS.backoff,
      onChange: () => this.schedule(),
      onMalformed: (m) => this.malformed(m.path, m.namespace, m.name, m.reason),
    });
    this.caches = {
      gateways: cache(`${GW}/gateways`),
      gatewayClasses: cache(`${GW}/gatewayclasses`),
      httpRoutes: cache(`${GW}/httproutes`),
      grpcRoutes: cache(`${GW}/grpcroutes`),
      services: cache('/api/v1/services'),
      namespaces: cache('/api/v1/namespaces'),
      deployments: cache('/apis/apps/v1/deployments', WAYPOINT_OBJECT_SELECTOR),
      serviceAccounts: cache('/api/v1/serviceaccounts', WAYPOINT_OBJECT_SELECTOR),
      configMaps: cache('/api/v1/configmaps', WAYPOINT_OBJECT_SELECTOR),
      clusterRoleBindings: cache('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', WAYPOINT_OBJECT_SELECTOR),
      keys: cache(`/api/v1/namespaces/${o.leaseNamespace}/configmaps`, `app.kubernetes.io/component=${WAYPOINT_KEYS_CONFIGMAP_NAME}`),
    };
    this.lease = new LeaderLease(o.kc, {
      namespace: o.leaseNamespace, name: o.leaseName ?? WAYPOINT_CONTROLLER_DEFAULTS.leaseName, identity: o.identity,
      leaseDurationSeconds: o.leaseDurationSeconds ?? WAYPOINT_CONTROLLER_DEFAULTS.leaseDurationSeconds,
      retryPeriodMs: o.retryPeriodMs ?? WAYPOINT_CONTROLLER_DEFAULTS.retryPeriodMs,
      log: this.log,
      onLeadershipChange: (leader) => { if (leader) { this.applied.clear(); this.statusWritten.clear(); this.schedule(); } },
    });
  }

  isLeader(): boolean { return this.lease.isLeader(); }

  start(): void {
    this.stopped = false;
    for (const c of Object.values(this.caches)) c.start();
    this.lease.start();
    this.resync = setInterval(() => { this.applied.clear(); this.schedule(); }, this.o.resyncMs ?? WAYPOINT_CONTROLLER_DEFAULTS.resyncMs);
    this.resync.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.resync) clearInterval(this.resync);
    for (const c of Object.values(this.caches)) c.stop();
    await this.lease.stop();
  }

  private schedule(delayMs = 20): void {
    if (this.stopped) return;
    if (this.running) { this.dirty = true; return; }
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.run(); }, delayMs);
    this.timer.unref?.();
  }

  private async run(): Promise<void> {
    this.running = true;
    this.dirty = false;
    let ok = true;
    try {
      ok = await this.reconcile();
    } catch (e) {
      ok = false;
      this.log.error({ err: (e as Error).message }, 'waypoint reconcile failed');
    }
    this.running = false;
    if (!ok) {
      this.failures++;
      const b = this.o.backoff ?? WAYPOINT_CONTROLLER_DEFAULTS.backoff;
      this.schedule(Math.min(b.maxMs, b.initialMs * 2 ** Math.min(this.failures - 1, 20)));
    } else {
      this.failures = 0;
      if (this.dirty) this.schedule();
    }
  }

  private malformed(path: string, namespace: string | undefined, name: string | undefined, reason: string, version = ''): void {
    const key = `${path}|${namespace ?? ''}/${name ?? ''}|${version}|${reason}`;
    if (this.reported.has(key)) return;
    if (this.reported.size > 10_000) this.reported.clear();
    this.reported.add(key);
    this.stats.malformedObjects++;
    this.log.warn({ resource: path, namespace, name, reason }, 'object malformed; ignored');
  }

  /** One pass over everything; false when some write failed (retried with backoff). */
  private async reconcile(): Promise<boolean> {
    if (!this.lease.isLeader()) return true;
    const c = this.caches;
    // Never delete what a Gateway owns before every Gateway is known.
    if (![c.gateways, c.deployments, c.services, c.serviceAccounts, c.configMaps, c.clusterRoleBindings, c.keys].every((x) => x.synced)) return true;
    this.stats.reconciles++;
    const now = kubeTime(Date.now());
    let ok = true;
    const wanted = new Set<string>();
    // Caller-statement keys first: the public keys are published before a waypoint that signs
    // with one is (re)started, and a gone waypoint's Secret goes with its entry.
    const keys = new Map<string, WaypointKey>();
    for (const gw of c.gateways.all()) {
      if (classifyGateway(gw).kind !== 'waypoint') continue;
      const id = spiffeId(this.o.values.trustDomain, gw.metadata.namespace!, gw.metadata.name);
      keys.set(id, waypointKey(this.o.keyMaster, id, gw.metadata.uid!));
    }
    ok = (await this.publishKeys(keys)) && ok;
    for (const gw of c.gateways.all()) {
      const verdict = classifyGateway(gw);
      if (verdict.kind === 'malformed') { this.malformed(`${GW}/gateways`, gw.metadata.namespace, gw.metadata.name, verdict.reason, gw.metadata.resourceVersion); continue; }
      if (verdict.kind === 'other-class') {
        const key = `other-class|${keyOf(gw.metadata.namespace, gw.metadata.name)}|${gw.metadata.uid ?? ''}`;
        if (!this.reported.has(key)) {
          this.reported.add(key);
          this.stats.otherClassGateways++;
          this.log.debug({ gateway: keyOf(gw.metadata.namespace, gw.metadata.name), gatewayClassName: verdict.className }, 'Gateway of another class; ignored');
        }
        continue;
      }
      wanted.add(keyOf(gw.metadata.namespace, gw.metadata.name));
      for (const obj of desiredWaypointObjects(this.o.values, gw, { caRootPem: this.o.caRootPem, signingKey: signingMaterial(keys.get(spiffeId(this.o.values.trustDomain, gw.metadata.namespace!, gw.metadata.name))!) })) ok = (await this.applyIfChanged(obj)) && ok;
      const status = gatewayStatus(gw, c.deployments.get(gw.metadata.namespace, gw.metadata.name), c.services.get(gw.metadata.namespace, gw.metadata.name), now);
      if (!sameIgnoringTimes(status, { conditions: gw.status?.conditions, addresses: gw.status?.addresses ?? [], listeners: gw.status?.listeners ?? [] })) {
        ok = (await this.patchStatus(`${GW}/namespaces/${gw.metadata.namespace}/gateways/${gw.metadata.name}`, gw, status)) && ok;
      }
    }
    // What a Gateway that is gone (or changed class) left behind, kind by kind: a delete that
    // failed half way is found again on the next pass.
    // Items of built-in lists carry no kind, hence the explicit one. The Deployment goes last.
    for (const [cache, apiVersion, kind] of [[c.services, 'v1', 'Service'], [c.serviceAccounts, 'v1', 'ServiceAccount'], [c.configMaps, 'v1', 'ConfigMap'],
      [c.clusterRoleBindings, 'rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'], [c.deployments, 'apps/v1', 'Deployment']] as const) {
      for (const o of cache.all()) {
        const owner = owningGateway(o);
        if (owner && !wanted.has(owner)) ok = (await this.deleteOrphan({ ...o, apiVersion, kind })) && ok;
      }
    }
    const gc = c.gatewayClasses.get(undefined, WAYPOINT_CLASS);
    const gcStatus = gc && gatewayClassStatus(gc, now);
    if (gc && gcStatus && !sameIgnoringTimes(gcStatus.conditions, gc.status?.conditions)) {
      ok = (await this.patchStatus(`${GW}/gatewayclasses/${WAYPOINT_CLASS}`, gc, { ...gc.status, ...gcStatus })) && ok;
    }
    const lookups: RouteLookups = {
      service: (ns, name) => c.services.get(ns, name),
      namespace: (name) => c.namespaces.get(undefined, name),
      gateway: (ns, name) => c.gateways.get(ns, name),
    };
    for (const [plural, cache] of [['httproutes', c.httpRoutes], ['grpcroutes', c.grpcRoutes]] as const) {
      for (const route of cache.all()) {
        const r = routeParentStatuses(route, lookups, now);
        if (r.kind === 'malformed') { this.malformed(`${GW}/${plural}`, route.metadata.namespace, route.metadata.name, r.reason, route.metadata.resourceVersion); continue; }
        if (r.kind === 'none' || sameIgnoringTimes(r.parents, route.status?.parents ?? [])) continue;
        ok = (await this.patchStatus(`${GW}/namespaces/${route.metadata.namespace}/${plural}/${route.metadata.name}`, route, { ...route.status, parents: r.parents })) && ok;
      }
    }
    return ok;
  }

  private async write(what: string, req: Parameters<typeof kubeRequest>[1], okCodes: number[]): Promise<boolean> {
    // Leadership may have moved while this pass was running: check before every write.
    if (!this.lease.isLeader()) return true;
    try {
      const res = await kubeRequest(this.o.kc, req);
      if (okCodes.includes(res.status)) { this.stats.writes++; return true; }
      this.stats.writeFailures++;
      this.log.warn({ object: what, status: res.status, err: statusMessage(res) }, res.status === 409 ? 'write conflict; retrying with fresh state' : 'write refused; retrying');
    } catch (e) {
      this.stats.writeFailures++;
      this.log.warn({ object: what, err: (e as Error).message }, 'write failed; retrying');
    }
    return false;
  }

  private async applyIfChanged(obj: KubeObject, cacheOf?: ResourceCache): Promise<boolean> {
    const path = objectPath(obj);
    const body = JSON.stringify(obj);
    // Secrets are never read (no list/watch of Secrets): what was applied is remembered, and
    // everything is applied again at each resync.
    if (obj.kind === 'Secret') {
      if (this.applied.get(path) === body) return true;
    } else {
      const cache = cacheOf ?? { Deployment: this.caches.deployments, Service: this.caches.services, ServiceAccount: this.caches.serviceAccounts, ConfigMap: this.caches.configMaps, ClusterRoleBinding: this.caches.clusterRoleBindings }[obj.kind ?? ''];
      const cached = cache?.get(obj.metadata.namespace, obj.metadata.name);
      if (this.applied.get(path) === body && cached) return true;
    }
    // force: these objects are the controller's; a hand edit of a field it sets is put back.
    const ok = await this.write(path, {
      method: 'PATCH', path, body, contentType: 'application/apply-patch+yaml', query: { fieldManager: FIELD_MANAGER, force: true },
    }, [200, 201]);
    if (ok) this.applied.set(path, body);
    return ok;
  }

  private async patchStatus(path: string, obj: KubeObject, status: unknown): Promise<boolean> {
    // The resourceVersion makes the patch conditional: status computed from a stale object
    // gets a 409 and is recomputed, never overwrites someone else's newer entries.
    const memo = `${obj.metadata.resourceVersion}|${withoutTimes(status)}`;
    if (this.statusWritten.get(path) === memo) return true;
    const ok = await this.write(`${path}/status`, {
      method: 'PATCH', path: `${path}/status`, contentType: 'application/merge-patch+json',
      body: { metadata: { resourceVersion: obj.metadata.resourceVersion }, status }, query: { fieldManager: FIELD_MANAGER },
    }, [200, 404]); // 404: deleted meanwhile; its watch event follows
    if (this.statusWritten.size > 10_000) this.statusWritten.clear();
    if (ok) this.statusWritten.set(path, memo);
    return ok;
  }

  /** The published public keys, then the Secrets of waypoints no longer there. */
  private async publishKeys(keys: ReadonlyMap<string, WaypointKey>): Promise<boolean> {
    const published = this.caches.keys.get(this.o.leaseNamespace, WAYPOINT_KEYS_CONFIGMAP_NAME) as (KubeObject & { data?: Record<string, string> }) | undefined;
    const doc = keysDocument(new Map([...keys].map(([id, k]) => [id, k.publicKey])));
    const cm = toPlain([waypointKeysConfigMap(this.o.values, doc)])[0] as KubeObject;
    let ok = await this.applyIfChanged(cm, this.caches.keys);
    if (!ok) return false;
    for (const id of publishedIds(published?.data?.[WAYPOINT_KEYS_ENTRY])) {
      if (keys.has(id)) continue;
      const p = parseSpiffeId(id);
      if (!p) continue;
      // The waypoint's ServiceAccount is named after its Gateway.
      ok = (await this.deleteOrphan({ apiVersion: 'v1', kind: 'Secret', metadata: { name: waypointSigningKeyName(p.serviceAccount), namespace: p.namespace } })) && ok;
    }
    return ok;
  }

  private async deleteOrphan(o: KubeObject): Promise<boolean> {
    const path = objectPath(o);
    this.applied.delete(path);
    const ok = await this.write(path, { method: 'DELETE', path, query: { propagationPolicy: 'Background' } }, [200, 202, 404]);
    if (ok) this.log.info({ object: `${o.kind} ${keyOf(o.metadata.namespace, o.metadata.name)}` }, 'waypoint object of a Gateway that is gone deleted');
    return ok;
  }
}
