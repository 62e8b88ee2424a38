// Small YAML builders for the sandbox manifests the e2e files apply (one definition of the
// pod and Service shapes the waypoint tests share). Each returns one document followed by `---`.

/** A pod on `node` running `command` as the ServiceAccount of its own name, with one
 * container port (`portName`, default `http`, port 8080). */
export function appPod(ns: string, name: string, node: string, labels: string, command: string[], env: Record<string, string> = {}, o: { port?: number; portName?: string } = {}): string {
  return `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { ${labels} } }
spec:
  nodeName: ${node}
  serviceAccountName: ${name}
  containers:
  - name: app
    command: ${JSON.stringify(command)}
    env: [${Object.entries(env).map(([k, v]) => `{ name: ${k}, value: ${JSON.stringify(v)} }`).join(', ')}]
    ports: [{ name: ${o.portName ?? 'http'}, containerPort: ${o.port ?? 8080} }]
---`;
}

/** A pod that only has to exist (commands run in it with `local exec`). */
export function sleeperPod(ns: string, name: string, node = 'node-1'): string {
  return `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns} }
spec: { nodeName: ${node}, serviceAccountName: ${name}, containers: [{ name: c, command: [sleep, "3600"] }] }
---`;
}

/** A Service with a fixed cluster IP, port 80 to the pods' named port (`targetPort`, default `http`). */
export function vipService(ns: string, name: string, vip: string, selector: string, o: { portName?: string; targetPort?: string } = {}): string {
  return `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${ns} }
spec: { selector: { ${selector} }, clusterIP: ${vip}, ports: [{ name: ${o.portName ?? 'http'}, port: 80, targetPort: ${o.targetPort ?? 'http'} }] }
---`;
}
