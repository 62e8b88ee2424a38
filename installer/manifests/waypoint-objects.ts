// The waypoint for a Gateway (class nodemesh-waypoint) named X in namespace Y: a Deployment,
// its Service (HBONE on 15008) and its ServiceAccount, all named after the Gateway and owned by
// it, so deleting the Gateway deletes them. Not part of the install set: the waypoint
// controller renders these per Gateway.
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { commonLabels } from './labels';
import { image } from './node-daemonset';
import { IMAGE_ROOT } from './node-daemonset';
import { IDENTITY_NAME, IDENTITY_PORT, NAMESPACE, READINESS_PORT, type ManifestValues } from './values';

export const WAYPOINT_COMPONENT = 'nodemesh-waypoint';
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
export const WAYPOINT_COMMAND = ['node', `${IMAGE_ROOT}/dist/waypoint/main.js`];

export interface WaypointGateway { name: string; namespace: string; uid?: string }

export function waypointObjects(v: ManifestValues, gw: WaypointGateway): [ServiceAccount, Deployment, Service] {
  const labels = { ...commonLabels(v, WAYPOINT_COMPONENT), [GATEWAY_NAME_LABEL]: gw.name };
  const selector = { [GATEWAY_NAME_LABEL]: gw.name };
  const ownerReferences = gw.uid
    ? [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: gw.name, uid: gw.uid, controller: true }]
    : undefined;
  const metadata = { name: gw.name, namespace: gw.namespace, labels, ownerReferences };
  return [
    new ServiceAccount({ metadata }),
    new Deployment({
      metadata,
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: gw.name,
            containers: [{
              name: 'waypoint', image: image(v), imagePullPolicy: v.imagePullPolicy, command: WAYPOINT_COMMAND,
              env: [
                { name: 'NODEMESH_GATEWAY', value: `${gw.namespace}/${gw.name}` },
                { name: 'NODEMESH_TRUST_DOMAIN', value: v.trustDomain },
                { name: 'NODEMESH_IDENTITY_ADDRESS', value: `${IDENTITY_NAME}.${NAMESPACE}.svc:${IDENTITY_PORT}` },
              ],
              ports: [{ name: 'hbone', containerPort: 15008 }, { name: 'readiness', containerPort: READINESS_PORT }],
              readinessProbe: { httpGet: { path: '/healthz/ready', port: READINESS_PORT } },
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } },
              securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 65532, capabilities: { drop: ['ALL'] } },
            }],
          },
        },
      },
    }),
    new Service({
      metadata,
      spec: { selector, ports: [{ name: 'hbone', port: 15008, targetPort: 15008, appProtocol: 'https' }] },
    }),
  ];
}
