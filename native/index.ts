// The one loader of the native addon. Tries $NODEMESH_NATIVE_PATH, then the build output
// in the repository; the error lists every path tried and why the last one failed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DaemonErrors } from '../daemon/errors';
import type { NativeBinding } from './native';

export type { NativeBinding, ObjectHandle, LinkHandle } from './native';

let cached: NativeBinding | undefined;

/** The repository root: the nearest ancestor of this file with nodemesh's package.json
 * (works from native/ in the source tree and from dist/native/ once compiled). */
export function repoRoot(from: string = __dirname): string {
  let dir = from;
  for (let i = 0; i < 16; i++) {
    const pkg = path.join(dir, 'package.json');
    try {
      if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'nodemesh') return dir;
    } catch {
      // not here; keep walking up
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  // Fall back to the layout we ship: dist/native/index.js -> ../..
  return path.resolve(from, '..', '..');
}

/** Candidate paths, in the order loadNative() tries them. */
export function nativeCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.NODEMESH_NATIVE_PATH) out.push(path.resolve(env.NODEMESH_NATIVE_PATH));
  out.push(path.join(repoRoot(), 'native', 'build', 'Release', 'nodemesh_native.node'));
  return out;
}

export function loadNative(): NativeBinding {
  cached ??= loadNativeFrom(nativeCandidates());
  return cached;
}

/** Loads the first candidate that exists and loads; the error names every path tried. */
export function loadNativeFrom(candidates: string[]): NativeBinding {
  const tried: string[] = [];
  const reasons: string[] = [];
  for (const p of candidates) {
    tried.push(p);
    if (!fs.existsSync(p)) {
      reasons.push(`${p}: not found`);
      continue;
    }
    try {
      return require(p) as NativeBinding;
    } catch (e) {
      reasons.push(`${p}: ${(e as Error).message}`);
    }
  }
  throw DaemonErrors.NODEMESH_E_NATIVE_MISSING({ tried, reason: reasons.join('; ') || 'no candidate path' });
}
