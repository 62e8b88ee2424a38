// The sandbox's object directory: the cluster's "API server storage" on disk. One JSON file
// per object; `nodemesh local apply` writes it, node daemons watch it (sandbox-source.ts).
// Writes are atomic (temp file + rename) so a reader never sees half an object.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

const CLUSTER_SCOPED = '_cluster';

export function objectFileName(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}.${namespace || CLUSTER_SCOPED}.${name}.json`;
}

export function writeObject(dir: string, obj: StoredObject): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, objectFileName(obj.kind, obj.metadata.namespace, obj.metadata.name));
  const tmp = path.join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
  fs.writeFileSync(tmp, JSON.stringify(obj, null, 2) + '\n');
  fs.renameSync(tmp, file);
  return file;
}

/** Returns false when there was no such object. */
export function removeObject(dir: string, kind: string, namespace: string | undefined, name: string): boolean {
  try {
    fs.unlinkSync(path.join(dir, objectFileName(kind, namespace, name)));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

export function readObject(dir: string, kind: string, namespace: string | undefined, name: string): StoredObject | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, objectFileName(kind, namespace, name)), 'utf8')) as StoredObject;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** What identifies the directory's content without reading it: every object file's name,
 * inode, modification time and size. Writes replace files by rename (a new inode), so any
 * change to an object changes this; an unchanged signature means nothing to read. */
export function directorySignature(dir: string): string {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
  const parts: string[] = [];
  for (const n of names.sort()) {
    if (!n.endsWith('.json') || n.startsWith('.')) continue;
    const st = fs.statSync(path.join(dir, n), { bigint: true, throwIfNoEntry: false });
    if (st) parts.push(`${n}:${st.ino}:${st.mtimeNs}:${st.size}`);
  }
  return parts.join('\n');
}

/** Every object in the directory. A file that is not valid JSON is reported, not fatal:
 * the rest of the cluster's state stays usable. */
export function readAllObjects(dir: string): { objects: StoredObject[]; errors: { file: string; error: string }[] } {
  const objects: StoredObject[] = [];
  const errors: { file: string; error: string }[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { objects, errors };
    throw e;
  }
  for (const n of names.sort()) {
    if (!n.endsWith('.json') || n.startsWith('.')) continue;
    const file = path.join(dir, n);
    try {
      objects.push(JSON.parse(fs.readFileSync(file, 'utf8')) as StoredObject);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed while listing
      errors.push({ file, error: (e as Error).message });
    }
  }
  return { objects, errors };
}
