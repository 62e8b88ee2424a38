// Which cluster and credentials: kubectl's rules (--kubeconfig, else $KUBECONFIG, else
// ~/.kube/config; --context, else the current context), with errors that say what to fix.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { InstallerErrors } from '../errors';

export interface KubeTarget { kubeconfig?: string; context?: string }

export function kubeconfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  // client-node merges a KUBECONFIG list; one file is what the errors can name.
  if (env.KUBECONFIG) return env.KUBECONFIG.split(path.delimiter).filter(Boolean)[0] ?? '';
  return path.join(os.homedir(), '.kube', 'config');
}

export function loadKubeConfig(target: KubeTarget, env: NodeJS.ProcessEnv = process.env): { kc: KubeConfig; file: string; server: string } {
  const file = kubeconfigPath(target.kubeconfig, env);
  const fail = (reason: string, cause?: unknown) => InstallerErrors.NODEMESH_E_KUBE_CONFIG({ file, reason }, { cause });
  if (!file) throw fail('KUBECONFIG is set but empty');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw fail((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : (e as Error).message, e);
  }
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (e) {
    throw fail(`it is not a valid kubeconfig (${(e as Error).message.split('\n')[0]})`, e);
  }
  const contexts = kc.getContexts().map((c) => c.name);
  if (target.context) {
    if (!contexts.includes(target.context)) throw InstallerErrors.NODEMESH_E_KUBE_CONTEXT({ context: target.context, file, contexts });
    kc.setCurrentContext(target.context);
  } else if (!kc.getCurrentContext() || !contexts.includes(kc.getCurrentContext())) {
    if (contexts.length === 0) throw fail('it defines no contexts');
    throw InstallerErrors.NODEMESH_E_KUBE_CONTEXT({ context: kc.getCurrentContext() || '(current-context is not set)', file, contexts });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw fail(`the context ${JSON.stringify(kc.getCurrentContext())} names no cluster with a server address`);
  return { kc, file, server: cluster.server };
}
