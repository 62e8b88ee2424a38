// The three non-apply patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
// strategic merge patch. Strategic merge here is merge patch plus merging of keyed lists
// (containers by name, ports by port, conditions by type, ...) and `$patch: delete|replace`
// directives; it does not implement `$setElementOrder`, `$retainKeys` or
// `$deleteFromPrimitiveList`.

export type ListKeys = (path: string[]) => string[] | undefined;

export class PatchError extends Error {}

const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, any> = isObject(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function strategicMergePatch(target: unknown, patch: unknown, listKeys: ListKeys, path: string[] = []): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _drop, ...rest } = patch;
    void _drop;
    return structuredClone(rest);
  }
  const out: Record<string, any> = isObject(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    if (v === null) { delete out[k]; continue; }
    const keys = listKeys([...path, k]);
    if (Array.isArray(v) && keys && Array.isArray(out[k])) {
      out[k] = mergeKeyedList(out[k], v, keys, listKeys, [...path, k]);
    } else if (isObject(v)) {
      out[k] = strategicMergePatch(out[k], v, listKeys, [...path, k]);
    } else {
      out[k] = structuredClone(v);
    }
  }
  return out;
}

function sameKey(a: any, b: any, keys: string[]): boolean {
  return keys.every((k) => a?.[k] === b?.[k] || (k === 'protocol' && (a?.[k] ?? 'TCP') === (b?.[k] ?? 'TCP')));
}

function mergeKeyedList(current: any[], patch: any[], keys: string[], listKeys: ListKeys, path: string[]): any[] {
  const out = structuredClone(current);
  for (const item of patch) {
    const i = out.findIndex((c) => sameKey(c, item, keys));
    if (isObject(item) && item.$patch === 'delete') {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) {
      out[i] = strategicMergePatch(out[i], item, listKeys, path);
    } else {
      out.push(strategicMergePatch(undefined, item, listKeys, path));
    }
  }
  return out;
}

// --- RFC 6902 ---------------------------------------------------------------------------------

interface JsonPatchOp { op: string; path: string; value?: unknown; from?: string }

function pointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new PatchError(`JSON pointer ${JSON.stringify(p)} does not start with '/'`);
  return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: any, parts: string[], path: string): any {
  let cur = doc;
  for (const part of parts.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(part)] : cur?.[part];
    if (cur === undefined || cur === null || typeof cur !== 'object') throw new PatchError(`doc is missing path: "${path}": missing value`);
  }
  return cur;
}

function getAt(doc: any, path: string): unknown {
  let cur = doc;
  for (const part of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(part)] : cur?.[part];
    if (cur === undefined) throw new PatchError(`doc is missing path: "${path}": missing value`);
  }
  return cur;
}

function removeAt(doc: any, path: string): unknown {
  const parts = pointer(path);
  const parent = parentOf(doc, parts, path);
  const last = parts[parts.length - 1];
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw new PatchError(`Unable to remove nonexistent key: ${last}: missing value`);
    return parent.splice(i, 1)[0];
  }
  if (!(last in parent)) throw new PatchError(`Unable to remove nonexistent key: ${last}: missing value`);
  const v = parent[last];
  delete parent[last];
  return v;
}

function addAt(doc: any, path: string, value: unknown, replace: boolean): any {
  const parts = pointer(path);
  if (parts.length === 0) return structuredClone(value);
  const parent = parentOf(doc, parts, path);
  const last = parts[parts.length - 1];
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length || (replace && i >= parent.length)) throw new PatchError(`Unable to access invalid index: ${last}: invalid index referenced`);
    parent.splice(i, replace ? 1 : 0, structuredClone(value));
  } else {
    if (replace && !(last in parent)) throw new PatchError(`Unable to replace nonexistent key: ${last}: missing value`);
    parent[last] = structuredClone(value);
  }
  return doc;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc: any = structuredClone(target);
  for (const raw of ops as JsonPatchOp[]) {
    switch (raw.op) {
      case 'add': doc = addAt(doc, raw.path, raw.value, false); break;
      case 'replace': doc = addAt(doc, raw.path, raw.value, true); break;
      case 'remove': removeAt(doc, raw.path); break;
      case 'move': { const v = removeAt(doc, raw.from ?? ''); doc = addAt(doc, raw.path, v, false); break; }
      case 'copy': doc = addAt(doc, raw.path, getAt(doc, raw.from ?? ''), false); break;
      case 'test':
        if (JSON.stringify(getAt(doc, raw.path)) !== JSON.stringify(raw.value)) throw new PatchError(`testing value ${raw.path} failed: test failed`);
        break;
      default: throw new PatchError(`Unexpected kind: ${String(raw.op)}`);
    }
  }
  return doc;
}

/** Keyed lists of the built-in kinds (patchMergeKey / listMapKeys in the Go types). */
export function builtinListKeys(path: string[]): string[] | undefined {
  const last = path[path.length - 1];
  const parent = path[path.length - 2];
  switch (last) {
    case 'containers': case 'initContainers': case 'ephemeralContainers': case 'env': case 'volumes': case 'imagePullSecrets':
      return ['name'];
    case 'volumeMounts': return ['mountPath'];
    case 'conditions': return ['type'];
    case 'podIPs': case 'hostIPs': return ['ip'];
    case 'ownerReferences': return ['uid'];
    case 'ports':
      if (parent === 'containers' || parent === 'initContainers') return ['containerPort', 'protocol'];
      if (path.length === 2 && parent === 'spec') return ['port', 'protocol'];
      return undefined;
    default: return undefined;
  }
}
