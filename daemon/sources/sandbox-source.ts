// State source for the sandbox cluster: watches the object directory that
// `nodemesh local apply` writes (object-directory.ts). fs.watch gives low latency; a slow
// poll covers events fs.watch can miss. Each refresh is compared with the last one and only
// what changed is delivered. The sandbox has no EndpointSlice controller, so this source
// derives the slices from Services and Pods as the controller would (state/endpoint-slices.ts):
// the snapshot reads endpoints from EndpointSlices for both sources.
import * as fs from 'node:fs';
import { directorySignature, readAllObjects } from './object-directory';
import { SkippedObject, SourceBatch, SourceChange, StateSource, boundedError } from './source';
import { ACCEPT_ALL, ObjectValidator, convertObject } from './convert';
import { deriveEndpointSlices } from '../state/endpoint-slices';
import { RESOURCE_KINDS, Pod, Resource, Service } from '../state/resources';

const keyOf = (r: Resource): string => `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;

export class SandboxSource implements StateSource {
  readonly name: string;
  private watcher: fs.FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  /** What was delivered last, by kind/ns/name, with its JSON text. */
  private last = new Map<string, { resource: Resource; text: string }>();
  private lastSkipped = '';
  /** directorySignature at the last refresh that read the files. */
  private lastSignature: string | undefined;
  private synced = false;
  private onBatch: ((b: SourceBatch) => void) | undefined;

  constructor(private readonly dir: string, private readonly pollMs = 1000, private readonly validate: ObjectValidator = ACCEPT_ALL) {
    this.name = `sandbox:${dir}`;
  }

  async start(onBatch: (b: SourceBatch) => void): Promise<void> {
    this.onBatch = onBatch;
    fs.mkdirSync(this.dir, { recursive: true });
    this.watcher = fs.watch(this.dir, () => this.schedule());
    this.watcher.on('error', () => undefined); // the poll keeps us going
    this.poll = setInterval(() => this.refresh(), this.pollMs);
    this.poll.unref();
    this.refresh();
  }

  stop(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
    this.onBatch = undefined;
  }

  private schedule(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(() => { this.debounce = undefined; this.refresh(); }, 10);
  }

  private refresh(): void {
    if (!this.onBatch) return;
    // The poll runs every second on every node: when no file changed since the last read, it
    // costs a readdir and a stat per object instead of reading, parsing and validating all of
    // them again (that was ~4% of a busy daemon's allocations).
    const signature = directorySignature(this.dir);
    if (signature === this.lastSignature) return;
    this.lastSignature = signature;
    const { objects, errors } = readAllObjects(this.dir);
    const skipped: SkippedObject[] = errors.map((e) => ({ kind: 'unknown', object: e.file, reason: 'unreadable', error: boundedError(e.error) }));
    const resources: Resource[] = [];
    for (const o of objects) {
      const c = convertObject(o, this.validate);
      if (c === null) continue;
      if (c.ok) resources.push(c.resource);
      else skipped.push({ kind: c.kind, object: c.object, reason: c.reason, error: c.error });
    }
    const pods = resources.filter((r): r is Pod => r.kind === 'Pod');
    for (const s of resources.filter((r): r is Service => r.kind === 'Service')) resources.push(...deriveEndpointSlices(s, pods));

    const next = new Map<string, { resource: Resource; text: string }>();
    const changes: SourceChange[] = [];
    for (const r of resources) {
      const key = keyOf(r);
      const text = JSON.stringify(r);
      next.set(key, { resource: r, text });
      if (this.last.get(key)?.text !== text) changes.push({ op: 'upsert', resource: r });
    }
    for (const [key, { resource: r }] of this.last) {
      if (!next.has(key)) changes.push({ op: 'delete', kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });
    }
    this.last = next;
    const skippedText = JSON.stringify(skipped);
    const newSkipped = skippedText !== this.lastSkipped;
    this.lastSkipped = skippedText;
    const synced = this.synced ? [] : RESOURCE_KINDS;
    this.synced = true;
    if (changes.length === 0 && !newSkipped && synced.length === 0) return;
    this.onBatch({ changes, synced, skipped: newSkipped ? skipped : [] });
  }
}
