// `nodemesh`: the command line. Wiring only: parse arguments, call installer/sandbox, print.
// Errors print `error: <message> (<code>)` and exit 1; wrong flags and values get commander's
// usage and exit 2 (kubectl's convention).
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { NodemeshError } from './errors';
import { apply, consoleOutput, down, exec, remove, status, up } from './sandbox/cluster';
import { demo } from './sandbox/demo';
import { restartDaemon } from './sandbox/daemons';
import { formatStatus } from './sandbox/status-format';
import { formatConnections, gatherConnections } from './sandbox/connections';
import { formatMeshStatus, gatherMeshStatus } from './sandbox/mesh-status';
import { addClusterCommands, clusterStatusCommand } from './kube/cli-commands';
import { layout, readCluster, stateDir } from './sandbox/state';
import { formatWaypoints, waypointApplyCommand, waypointDeleteCommand, waypointListCommand } from './sandbox/waypoints';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function nodeCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 200) throw new InvalidArgumentError('expected a whole number from 1 to 200');
  return n;
}

export function buildProgram(): Command {
  const program = new Command('nodemesh')
    .description('nodemesh: an eBPF-assisted, node-level (ambient) service mesh for Kubernetes')
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride()
    .configureHelp({ sortSubcommands: false });

  const local = program.command('local')
    .description('a real multi-node sandbox cluster on this machine (network namespaces, cgroups, real node daemons); needs root')
    .enablePositionalOptions()
    .showHelpAfterError();

  local.command('up')
    .description('create the sandbox cluster, start a nodemesh-node daemon per node, apply manifests, and return once ready')
    .option('--nodes <n>', 'number of nodes', nodeCount, 2)
    .option('-f, --filename <file|dir>', 'manifest file or directory to apply once the cluster is up (repeatable; - for stdin)', collect)
    .option('--apiserver <kubeconfig>', 'publish the sandbox to this API server (nodes, pods with status, services, EndpointSlices, service accounts, manifests) and run the daemons and nodemesh-identity on the Kubernetes source; apply, delete and down follow')
    .action(async (o: { nodes: number; filename?: string[]; apiserver?: string }) => {
      await up({ nodes: o.nodes, files: o.filename ?? [], ...(o.apiserver ? { apiserver: o.apiserver } : {}) });
    });

  local.command('down')
    .description('stop the daemons and pods and remove every namespace, cgroup, eBPF pin and state file of the sandbox')
    .action(async () => { await down(); });

  local.command('status')
    .description('nodes, daemons, pods (node, IP, phase, enrolment), services (VIP, endpoints) and policies')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (o: { output: string }) => {
      if (o.output !== 'text' && o.output !== 'json') throw new InvalidArgumentError(`-o must be text or json, not ${JSON.stringify(o.output)}`);
      const s = await status();
      process.stdout.write(o.output === 'json' ? `${JSON.stringify(s, null, 2)}\n` : `${formatStatus(s)}\n`);
    });

  local.command('apply')
    .description('create or update objects from manifests, as kubectl apply (new pods start; relabelled namespaces and pods, and policies, take effect before it returns)')
    .requiredOption('-f, --filename <file|dir>', 'manifest file or directory (repeatable; - for stdin)', collect)
    .action(async (o: { filename: string[] }) => { await apply(o.filename); });

  local.command('delete')
    .description('delete the objects named in manifests, as kubectl delete -f (a Namespace takes its pods, services and policies)')
    .requiredOption('-f, --filename <file|dir>', 'manifest file or directory (repeatable; - for stdin)', collect)
    .option('--ignore-not-found', 'do not fail on objects that do not exist', false)
    .action(async (o: { filename: string[]; ignoreNotFound: boolean }) => { await remove(o.filename, { ignoreNotFound: o.ignoreNotFound }); });

  local.command('exec')
    .description('run a command inside a pod (its network namespace, cgroup and environment); stdio and exit code pass through')
    .usage('<namespace>/<pod> -- <command> [args...]')
    .argument('<pod>', '<namespace>/<pod>, or <pod> in the default namespace')
    .argument('[command...]', 'the command and its arguments, after --')
    .passThroughOptions()
    .action(async (pod: string, command: string[]) => {
      // With passThroughOptions commander keeps the `--` separator among the operands.
      process.exitCode = await exec(pod, command[0] === '--' ? command.slice(1) : command);
    });

  local.command('restart-daemon')
    .description('hitless restart of a node\'s nodemesh-node: start a new one beside it, wait until it is ready, then stop the old one (it drains open connections up to NODEMESH_DRAIN_TIMEOUT_SECONDS)')
    .argument('<node>', 'node name, e.g. node-1')
    .action(async (node: string) => {
      const r = await restartDaemon(node, consoleOutput.info);
      consoleOutput.result(`${r.node} restarted: pid ${r.old?.pid ?? '-'} -> ${r.new.pid} (new ready after ${r.tookOverMs} ms; old ${r.oldExit} after ${r.oldStoppedMs} ms)`);
    });

  local.command('demo')
    .description('show the running sandbox at work: status, a request through the shop example, the daemons\' view')
    .action(async () => { await demo(consoleOutput); });

  program.command('status')
    .description('the mesh per node. On a cluster (--kubeconfig/--context/-n, or no sandbox here): daemon ready, enrolled pods, certificates; in the sandbox: enrolled pods, workload certificates, HBONE pools and servers, policies in force')
    .option('-o, --output <format>', 'text or json (a cluster also: yaml)', 'text')
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: the current context)')
    .option('-n, --namespace <ns>', 'cluster: count only the enrolled pods of this namespace')
    .action(async (o: { output: string; kubeconfig?: string; context?: string; namespace?: string }) => {
      const cluster = Boolean(o.kubeconfig || o.context || o.namespace || !readCluster(layout(stateDir())));
      if (o.output !== 'text' && o.output !== 'json' && !(cluster && o.output === 'yaml')) {
        throw new InvalidArgumentError(`-o must be text or json${cluster ? ' or yaml' : ''}, not ${JSON.stringify(o.output)}`);
      }
      if (cluster) return clusterStatusCommand(o);
      const all = await gatherMeshStatus();
      process.stdout.write(o.output === 'json' ? `${JSON.stringify(all, null, 2)}\n` : `${formatMeshStatus(all)}\n`);
    });

  program.command('connections')
    .description("connections the node daemons handled, open and recently closed: source and destination workloads, original destination, bytes each way, verdict")
    .option('-o, --output <format>', 'text or json', 'text')
    .option('--node <name>', 'only this node')
    .action(async (o: { output: string; node?: string }) => {
      if (o.output !== 'text' && o.output !== 'json') throw new InvalidArgumentError(`-o must be text or json, not ${JSON.stringify(o.output)}`);
      const all = await gatherConnections(o.node);
      process.stdout.write(o.output === 'json' ? `${JSON.stringify(all, null, 2)}\n` : `${formatConnections(all)}\n`);
    });

  program.command('bench')
    .description('side-by-side benchmark in its own sandbox cluster: no mesh, sidecar (nodemesh), sidecar (HAProxy), ambient L4 (bench/README.md); needs root')
    .option('--quick', 'every mode briefly (seconds per mode): checks the harness, not the numbers')
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption('-h, --help', 'options: --quick --seconds --rates --new-conn-rate --same-node-rate --conns --wrk-seconds --bulk-mib --pods --hold-conns --out-dir (bench/README.md)')
    .action(async () => {
      // The bench parses its own options (bench/mesh-compare.ts), so they are documented once.
      const { parseCompareArgs, runCompare } = await import('../bench/mesh-compare');
      const argv = process.argv.slice(process.argv.indexOf('bench') + 1);
      try { parseCompareArgs(argv); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
      try {
        process.exitCode = await runCompare(argv);
      } catch (e) {
        if (NodemeshError.is(e)) throw e;
        process.stderr.write(`error: nodemesh bench: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });

  // Waypoints (issue 9): a Gateway of class nodemesh-waypoint per namespace, as istioctl waypoint.
  const waypoint = program.command('waypoint')
    .description('L7 waypoints in the sandbox: a Gateway of class nodemesh-waypoint and its nodemesh-waypoint process')
    .showHelpAfterError();
  waypoint.command('apply')
    .description('create the waypoint of a namespace and start it; --enroll-namespace sends the namespace\'s Services through it')
    .requiredOption('-n, --namespace <ns>', 'namespace')
    .option('--name <name>', 'Gateway name', 'waypoint')
    .option('--enroll-namespace', 'label the namespace nodemesh.io/use-waypoint=<name>', false)
    .action(async (o: { namespace: string; name: string; enrollNamespace: boolean }) => {
      await waypointApplyCommand(o.namespace, o.name, { enrolNamespace: o.enrollNamespace }, consoleOutput);
    });
  waypoint.command('delete')
    .description('stop a waypoint and delete its Gateway (Services labelled for it are then refused: fail closed)')
    .requiredOption('-n, --namespace <ns>', 'namespace')
    .option('--name <name>', 'Gateway name', 'waypoint')
    .action(async (o: { namespace: string; name: string }) => { await waypointDeleteCommand(o.namespace, o.name, consoleOutput); });
  waypoint.command('list')
    .description('waypoints: where they run, the Services bound to them, their routes\' status')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (o: { output: string }) => {
      if (o.output !== 'text' && o.output !== 'json') throw new InvalidArgumentError(`-o must be text or json, not ${JSON.stringify(o.output)}`);
      const list = await waypointListCommand();
      process.stdout.write(o.output === 'json' ? `${JSON.stringify(list, null, 2)}\n` : `${formatWaypoints(list)}\n`);
    });

  addClusterCommands(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError && !(e instanceof InvalidArgumentError)) {
      // commander has printed the message (and usage); help and --version are not errors.
      process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version' ? 0 : 2;
      return;
    }
    if (NodemeshError.is(e)) {
      process.stderr.write(`error: ${e.message} (${e.code})\n`);
      if (e.code === 'NODEMESH_E_CLI_BAD_VALUE') {
        process.exitCode = 2;
        return;
      }
    } else if (e instanceof InvalidArgumentError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 2;
      return;
    } else {
      const err = e as Error;
      process.stderr.write(`error: ${err.message} (NODEMESH_E_INTERNAL)\n${err.stack ?? ''}\n`);
    }
    process.exitCode = 1;
  }
}

if (require.main === module) void main();
