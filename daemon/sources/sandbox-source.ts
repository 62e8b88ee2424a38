// State source for the sandbox cluster: watches the object directory that
// `nodemesh local apply` writes (object-directory.ts). fs.watch gives low latency; a slow
// poll covers events fs.watch can miss. Unchanged content is not re-delivered.
import * as fs from 'node:fs';
import { readAllObjects } from './object-directory';
import { SourceUpdate, StateSource, toResources } from './source';

export class SandboxSource implements StateSource {
  readonly name: string;
  private watcher: fs.FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private last = '';
  private onUpdate: ((u: SourceUpdate) => void) | undefined;

  constructor(private readonly dir: string, private readonly pollMs = 1000) {
    this.name = `sandbox:${dir}`;
  }

  async start(onUpdate: (u: SourceUpdate) => void): Promise<void> {
    this.onUpdate = onUpdate;
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
    this.onUpdate = undefined;
  }

  private schedule(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(() => { this.debounce = undefined; this.refresh(); }, 10);
  }

  private refresh(): void {
    if (!this.onUpdate) return;
    const { objects, errors } = readAllObjects(this.dir);
    const text = JSON.stringify(objects) + JSON.stringify(errors);
    if (text === this.last) return;
    this.last = text;
    this.onUpdate({ resources: toResources(objects), errors: errors.map((e) => ({ object: e.file, error: e.error })) });
  }
}
