// The CRDs ship as YAML files in installer/crds/ (one per CRD, their schemas written there);
// the manifests read them as they are, so the cluster gets exactly the schema the sandbox
// validates with.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { InstallerErrors } from '../errors';
import { PACKAGE_ROOT } from './values';

export const CRD_DIR = path.join(PACKAGE_ROOT, 'installer', 'crds');

export function crdFiles(dir: string = CRD_DIR): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names.filter((n) => /\.ya?ml$/.test(n)).sort().map((n) => path.join(dir, n));
}

export function loadCrds(dir: string = CRD_DIR): CustomResourceDefinition[] {
  const out: CustomResourceDefinition[] = [];
  for (const file of crdFiles(dir)) {
    for (const doc of parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
      if (doc.errors.length) throw InstallerErrors.NODEMESH_E_MANIFEST_READ({ path: file, reason: doc.errors[0].message });
      const obj = doc.toJS() as { kind?: string } | null;
      if (obj === null) continue;
      if (obj.kind !== 'CustomResourceDefinition') {
        throw InstallerErrors.NODEMESH_E_MANIFEST_READ({ path: file, reason: `holds a ${String(obj.kind)}, not a CustomResourceDefinition` });
      }
      const { apiVersion: _a, kind: _k, ...rest } = obj as Record<string, unknown>;
      out.push(new CustomResourceDefinition(rest as never));
    }
  }
  return out;
}
