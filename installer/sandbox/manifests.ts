// Reading `-f FILE|DIR|-` arguments into validated manifest entries. Every file is parsed
// and checked before anything is applied; one bad document rejects the whole input.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseManifest, type ManifestEntry, type ManifestIssue } from '../../daemon/state/manifest';
import { InstallerErrors } from '../errors';
import { SERVICE_CIDR } from './state';

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

function display(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

/** Files named by the arguments: a directory contributes its manifest files (sorted, not
 * recursive, as `kubectl apply -f DIR`); `-` is standard input. */
export function manifestFiles(args: readonly string[]): string[] {
  const files: string[] = [];
  for (const a of args) {
    if (a === '-') {
      files.push('-');
      continue;
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(a);
    } catch (e) {
      throw InstallerErrors.NODEMESH_E_MANIFEST_READ({ path: a, reason: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message }, { cause: e });
    }
    if (st.isDirectory()) {
      const inDir = fs.readdirSync(a).filter((n) => MANIFEST_EXTENSIONS.includes(path.extname(n)) && !n.startsWith('.')).sort();
      if (inDir.length === 0) throw InstallerErrors.NODEMESH_E_MANIFEST_EMPTY({ path: a });
      files.push(...inDir.map((n) => path.join(a, n)));
    } else {
      files.push(a);
    }
  }
  return files;
}

export function loadManifests(args: readonly string[], opts: { serviceCIDR?: string } = {}): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  const issues: ManifestIssue[] = [];
  for (const f of manifestFiles(args)) {
    let text: string;
    try {
      text = f === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw InstallerErrors.NODEMESH_E_MANIFEST_READ({ path: f, reason: (e as Error).message }, { cause: e });
    }
    const r = parseManifest(text, f === '-' ? '<stdin>' : display(f), { sandbox: true, serviceCIDR: opts.serviceCIDR ?? SERVICE_CIDR });
    if (r.ok) entries.push(...r.entries);
    else issues.push(...r.issues);
  }
  if (issues.length > 0) throw InstallerErrors.NODEMESH_E_MANIFEST_INVALID({ issues }, { details: { issues } });
  if (entries.length === 0) throw InstallerErrors.NODEMESH_E_MANIFEST_EMPTY({ path: args.join(', ') });
  return entries;
}
