// Writes route status back into the object directory, as a Gateway API controller writes it
// to the API server: only for routes whose parents this waypoint serves, only when the
// conditions changed (so the write does not feed back into another rebuild).
import { readObject, writeObject, type StoredObject } from '../daemon/sources/object-directory';
import type { RouteEntry } from './route-table';
import type { RouteParentStatus } from './route-status';

const comparable = (s: readonly RouteParentStatus[] | undefined) =>
  JSON.stringify((s ?? []).map((p) => ({ ...p, conditions: p.conditions.map(({ lastTransitionTime: _t, ...c }) => c) })));

/** Returns the routes whose status was written. */
export function writeRouteStatuses(dir: string, entries: readonly RouteEntry[], serves: (parent: { namespace: string; name: string }) => boolean): string[] {
  const written: string[] = [];
  for (const e of entries) {
    const mine = e.status.filter((p) => serves(p.parentRef));
    if (mine.length === 0) continue;
    const obj = readObject(dir, e.route.kind, e.route.namespace, e.route.name) as (StoredObject & { status?: { parents?: RouteParentStatus[] } }) | undefined;
    if (!obj) continue;
    const others = (obj.status?.parents ?? []).filter((p) => !mine.some((m) => m.parentRef.name === p.parentRef.name && m.parentRef.namespace === p.parentRef.namespace));
    const parents = [...others, ...mine];
    if (comparable(parents) === comparable(obj.status?.parents)) continue;
    writeObject(dir, { ...obj, status: { ...(obj.status ?? {}), parents } });
    written.push(`${e.route.kind}/${e.route.namespace}/${e.route.name}`);
  }
  return written;
}
