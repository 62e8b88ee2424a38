// The cluster commands of `nodemesh` (kubectl/istioctl conventions): install, upgrade,
// uninstall, enroll, unenroll, status, manifest render. Wiring only; cli.ts adds them.
import * as fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { KubeApi } from './api-client';
import { loadKubeConfig, type KubeTarget } from './kube-config';
import { installOrUpgrade, uninstall } from './install';
import { setEnrolment } from './enroll';
import { clusterStatus, formatClusterStatus } from './cluster-status';
import type { Output } from './apply';
import { installObjects, toJson, toYaml, type KubeObject } from '../manifests/render';
import { resolveValues, type ManifestValues } from '../manifests/values';
import { writeHelmChart } from '../manifests/helm-chart';
import { caMaterial } from '../manifests/ca-objects';
import { MeshCA } from '../../daemon/identity/ca';
import { CA_SECRET_NAME, CA_ROOT_CONFIGMAP_NAME } from '../manifests/values';

export const DEFAULT_TIMEOUT_SECONDS = 300;

/** 90, 90s, 5m, 1h30m: seconds (kubectl's --timeout style). */
export function parseDuration(value: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$/.exec(value.trim());
  const secs = m && value.trim() ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : NaN;
  if (!Number.isFinite(secs) || secs < 1) throw new InvalidArgumentError('expected a duration such as 300s, 5m or 1h');
  return secs;
}

function outputFormat(value: string): 'yaml' | 'json' {
  if (value !== 'yaml' && value !== 'json') throw new InvalidArgumentError(`expected yaml or json, not ${JSON.stringify(value)}`);
  return value;
}

interface ValueFlags { version?: string; image?: string; imagePullPolicy?: string; trustDomain?: string; identityReplicas?: string; maxUnavailable?: string; logLevel?: string }

function withValueFlags(c: Command): Command {
  return c
    .option('--version <tag>', 'nodemesh version: the image tag (default: this CLI\'s version)')
    .option('--image <repository>', 'image repository, without the tag')
    .option('--image-pull-policy <policy>', 'Always, IfNotPresent or Never')
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the mesh')
    .option('--identity-replicas <n>', 'replicas of nodemesh-identity')
    .option('--max-unavailable <n>', 'nodes whose daemon may be unavailable during a rolling update')
    .option('--log-level <level>', 'trace, debug, info, warn or error');
}

function valuesFrom(o: ValueFlags): ManifestValues {
  return resolveValues({
    version: o.version, imageRepository: o.image, imagePullPolicy: o.imagePullPolicy, trustDomain: o.trustDomain,
    identityReplicas: o.identityReplicas, nodeMaxUnavailable: o.maxUnavailable, logLevel: o.logLevel,
  });
}

function withKubeFlags(c: Command): Command {
  return c
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: the current context)');
}

export function kubeApi(t: KubeTarget): KubeApi {
  return new KubeApi(loadKubeConfig(t).kc);
}

/** Progress on a terminal redraws in place; into a pipe or file, a line per change. */
export function consoleProgress(stream: NodeJS.WriteStream = process.stderr): Output {
  let drawn = 0;
  let last = '';
  const tty = stream.isTTY === true;
  return {
    line(text) {
      if (tty && drawn) { stream.write(`\x1b[${drawn}F\x1b[J`); drawn = 0; }
      stream.write(`${text}\n`);
      last = '';
    },
    progress(text) {
      if (text === last) return;
      last = text;
      if (tty) {
        if (drawn) stream.write(`\x1b[${drawn}F\x1b[J`);
        stream.write(`${text}\n`);
        drawn = text.split('\n').length;
      } else {
        stream.write(`${text}\n`);
      }
    },
    done() { drawn = 0; last = ''; },
  };
}

function render(objects: KubeObject[], format: 'yaml' | 'json'): string {
  return format === 'json' ? toJson(objects) : toYaml(objects);
}

export function addClusterCommands(program: Command): void {
  const out = consoleProgress();

  const installCmd = (name: 'install' | 'upgrade', description: string): void => {
    const c = withKubeFlags(withValueFlags(program.command(name).description(description)))
      .option('--force-conflicts', 'take over fields another field manager owns (server-side apply --force-conflicts)', false)
      .option('--timeout <duration>', 'how long to wait for the CRDs and the DaemonSet rollout', parseDuration, DEFAULT_TIMEOUT_SECONDS);
    if (name === 'install') {
      c.option('--dry-run', 'print the objects instead of applying them (exactly what `manifest render` prints)', false)
        .addOption(new Option('-o, --output <format>', 'with --dry-run: yaml or json').argParser(outputFormat).default('yaml'));
    }
    c.action(async (o: ValueFlags & KubeTarget & { forceConflicts: boolean; timeout: number; dryRun?: boolean; output?: 'yaml' | 'json' }) => {
      const values = valuesFrom(o);
      if (o.dryRun) {
        process.stdout.write(render(installObjects(values), o.output ?? 'yaml'));
        return;
      }
      const api = kubeApi(o);
      const p = await installOrUpgrade(api, name, { values, forceConflicts: o.forceConflicts, timeoutSeconds: o.timeout, out });
      process.stdout.write(`nodemesh ${values.version} ${name === 'install' ? 'installed' : 'upgraded'}: ${p.ready}/${p.desired} nodes ready\n`);
    });
  };
  installCmd('install', 'install nodemesh into a cluster: server-side apply of every object (CRDs first), the mesh CA, then wait for the node DaemonSet rollout');
  installCmd('upgrade', 'apply a new version or new values to an installed nodemesh and wait for the node DaemonSet rollout');

  withKubeFlags(program.command('uninstall')
    .description("remove what install created, in reverse order; enrolled pods keep working (a one-shot DaemonSet detaches the eBPF programs on every node)"))
    .option('--purge', 'also delete the CRDs, and with them every AuthorizationPolicy and PeerAuthentication', false)
    .option('--timeout <duration>', 'how long to wait for the daemons to stop and detach', parseDuration, DEFAULT_TIMEOUT_SECONDS)
    .action(async (o: KubeTarget & { purge: boolean; timeout: number }) => {
      await uninstall(kubeApi(o), { values: resolveValues({}), purge: o.purge, timeoutSeconds: o.timeout, out });
      process.stdout.write('nodemesh uninstalled\n');
    });

  for (const [name, enrol] of [['enroll', true], ['unenroll', false]] as const) {
    withKubeFlags(program.command(name)
      .description(enrol ? 'enrol every pod of a namespace in the mesh (label nodemesh.io/dataplane-mode=ambient)' : 'take a namespace out of the mesh (remove the label)'))
      .argument('<namespace>', 'the namespace')
      .action(async (ns: string, o: KubeTarget) => {
        const r = await setEnrolment(kubeApi(o), ns, enrol);
        process.stdout.write(`namespace/${ns} ${r === 'unchanged' ? 'unchanged' : enrol ? 'enrolled' : 'unenrolled'}\n`);
      });
  }

  const manifest = program.command('manifest').description('the Kubernetes objects of an install');
  withValueFlags(manifest.command('render')
    .description('print every object install applies (the CA Secret as an empty placeholder: its key is generated at install)'))
    .addOption(new Option('-o, --output <format>', 'yaml or json').argParser(outputFormat).default('yaml'))
    .option('--generate-ca', 'fill the CA Secret and root ConfigMap with a freshly generated CA (prints a private key: for offline installs only)', false)
    .option('--helm-chart <dir>', 'write the Helm chart generated from these manifests to <dir> instead of printing')
    .action(async (o: ValueFlags & { output: 'yaml' | 'json'; generateCa: boolean; helmChart?: string }) => {
      const values = valuesFrom(o);
      if (o.helmChart) {
        fs.mkdirSync(o.helmChart, { recursive: true });
        const files = writeHelmChart(o.helmChart);
        process.stdout.write(`wrote ${files.length} files to ${o.helmChart}\n`);
        return;
      }
      const objects = installObjects(values);
      if (o.generateCa) {
        const { keyPem, certPem } = (await MeshCA.create({ trustDomain: values.trustDomain })).toPem();
        const m = caMaterial(keyPem, certPem);
        for (const obj of objects) {
          if (obj.kind === 'Secret' && obj.metadata.name === CA_SECRET_NAME) obj.data = m.secretData;
          if (obj.kind === 'ConfigMap' && obj.metadata.name === CA_ROOT_CONFIGMAP_NAME) obj.data = m.configMapData;
        }
      }
      process.stdout.write(render(objects, o.output));
    });
}

export async function clusterStatusCommand(o: KubeTarget & { namespace?: string; output: string }): Promise<void> {
  const s = await clusterStatus(kubeApi(o), { namespace: o.namespace });
  if (o.output === 'json') process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  else if (o.output === 'yaml') process.stdout.write(stringify(s));
  else process.stdout.write(`${formatClusterStatus(s)}\n`);
}
