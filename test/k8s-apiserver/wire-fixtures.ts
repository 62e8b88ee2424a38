// The recorded kube-apiserver v1.35 exchanges (shared/k8s-wire, next to the repository: the
// repository's parent directory holds shared/, or its grandparent for a worktree under wt/).
// Tests compare what the test server says with what the real one said.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** dist/test/k8s-apiserver -> the repository root; also right when run from the sources. */
function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`k8s-wire: no package.json above ${__dirname}; run the tests from the nodemesh repository`);
    dir = up;
  }
  return dir;
}

export function wireDir(): string {
  const root = repoRoot();
  const candidates = [path.resolve(root, '..', 'shared', 'k8s-wire'), path.resolve(root, '..', '..', 'shared', 'k8s-wire')];
  const found = candidates.find((c) => fs.existsSync(path.join(c, 'README.md')));
  if (!found) {
    throw new Error(`the recorded Kubernetes API responses (shared/k8s-wire) are missing: looked in ${candidates.join(' and ')}; they sit next to the repository (its parent directory holds shared/)`);
  }
  return found;
}

export interface RecordedExchange {
  status: number;
  headers: Record<string, string[]>;
  body: string;
}

/** `name` without extension, e.g. `06-get-missing-404`. */
export function recorded(name: string): RecordedExchange {
  const dir = wireDir();
  const headerText = fs.readFileSync(path.join(dir, `${name}.headers`), 'utf8');
  const body = fs.readFileSync(path.join(dir, `${name}.body`), 'utf8');
  const [statusLine, ...lines] = headerText.split(/\r?\n/).filter((l) => l.trim() !== '');
  const headers: Record<string, string[]> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).trim().toLowerCase();
    (headers[k] = headers[k] ?? []).push(l.slice(i + 1).trim());
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

export function recordedJson(name: string): any {
  return JSON.parse(recorded(name).body);
}

/** Watch bodies: one JSON event per line. */
export function recordedEvents(name: string): { type: string; object: any }[] {
  return recorded(name).body.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

export function recordedFile(file: string): string {
  return fs.readFileSync(path.join(wireDir(), file), 'utf8');
}
