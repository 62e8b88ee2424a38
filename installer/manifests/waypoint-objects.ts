// The waypoint for a Gateway (class nodemesh-waypoint) named X in namespace Y: a Deployment,
// its Service (HBONE on 15008) and its ServiceAccount, all named after the Gateway and owned by
// it, so deleting the Gateway deletes them; a copy of the mesh CA root (a pod mounts
// ConfigMaps of its own namespace only); and the ClusterRoleBinding that lets the
// ServiceAccount read what a waypoint watches (waypoint-rbac.ts; cluster-scoped, so found by
// label, not owner, when the Gateway goes). Not part of the install set: the waypoint
// controller renders these per Gateway.
//
// The waypoint process follows the Kubernetes API as its ServiceAccount (NODEMESH_SOURCE=kube)
// and gets its certificate from nodemesh-identity with a projected token of that ServiceAccount
// (audience nodemesh-identity, bound to the pod).
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import type { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { CA_CERT_ENTRY } from './ca-objects';
import { commonLabels } from './labels';
import { CA_ROOT_DIR, IMAGE_ROOT, TOKEN_DIR, TOKEN_EXPIRATION_SECONDS, TOKEN_FILE, image } from './node-daemonset';
import { IDENTITY_NAME, IDENTITY_PORT, ENROL_LABEL, IDENTITY_TOKEN_AUDIENCE, NAMESPACE, READINESS_PORT, WAYPOINT_KEYS_CONFIGMAP_NAME, type ManifestValues } from './values';
import { waypointClusterRoleBinding } from './waypoint-rbac';
import { TRUST_FILE_NAME } from '../../daemon/tunnel/caller-statement-trust';

export const WAYPOINT_COMPONENT = 'nodemesh-waypoint';
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
export const WAYPOINT_COMMAND = ['node', `${IMAGE_ROOT}/dist/waypoint/main.js`];
export const WAYPOINT_HBONE_PORT = 15008;

export interface WaypointGateway { name: string; namespace: string; uid?: string }

/** What the controller knows and the template does not: the mesh CA root (PEM) and the
 * waypoint's caller-statement key (base64url secret key, and its public key's fingerprint). */
export interface WaypointMaterial { caRootPem: string; signingKey?: { secretKey: string; fingerprint: string } }

export const SIGNING_KEY_DIR = '/var/run/secrets/nodemesh/caller-statement';
export const SIGNING_KEY_ENTRY = 'key';
export const SIGNING_KEY_ANNOTATION = 'nodemesh.io/caller-statement-key';
const WAYPOINT_UID = 65532;

export function waypointObjects(v: ManifestValues, gw: WaypointGateway, material: WaypointMaterial = { caRootPem: '' }): [ServiceAccount, ConfigMap, Secret, Deployment, Service, ClusterRoleBinding] {
  const labels = { ...commonLabels(v, WAYPOINT_COMPONENT), [GATEWAY_NAME_LABEL]: gw.name };
  const selector = { [GATEWAY_NAME_LABEL]: gw.name };
  const ownerReferences = gw.uid
    ? [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: gw.name, uid: gw.uid, controller: true }]
    : undefined;
  const metadata = { name: gw.name, namespace: gw.namespace, labels, ownerReferences };
  return [
    new ServiceAccount({ metadata }),
    new ConfigMap({ metadata: { ...metadata, name: waypointCaRootName(gw.name) }, data: { [CA_CERT_ENTRY]: material.caRootPem } }),
    // Its caller-statement signing key: mounted by this Deployment only.
    new Secret({
      metadata: { ...metadata, name: waypointSigningKeyName(gw.name) }, type: 'Opaque',
      ...(material.signingKey ? { data: { [SIGNING_KEY_ENTRY]: Buffer.from(material.signingKey.secretKey).toString('base64') } } : {}),
    }),
    new Deployment({
      metadata,
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          // The waypoint's own traffic is never captured (it speaks HBONE itself), as in the sandbox.
          metadata: { labels: { ...labels, [ENROL_LABEL]: 'none' }, ...(material.signingKey ? { annotations: { [SIGNING_KEY_ANNOTATION]: material.signingKey.fingerprint } } : {}) },
          spec: {
            serviceAccountName: gw.name,
            // Mounted Secret files are group-readable for this group only.
            securityContext: { fsGroup: WAYPOINT_UID },
            // The waypoint reads the API with the token of its projected volume only.
            automountServiceAccountToken: true,
            containers: [{
              name: 'waypoint', image: image(v), imagePullPolicy: v.imagePullPolicy, command: WAYPOINT_COMMAND,
              env: [
                { name: 'NODEMESH_SOURCE', value: 'kube' },
                { name: 'NODEMESH_WAYPOINT_NAME', value: gw.name },
                { name: 'NODEMESH_WAYPOINT_NAMESPACE', value: gw.namespace },
                { name: 'NODEMESH_WAYPOINT_SERVICE_ACCOUNT', value: gw.name },
                { name: 'NODEMESH_POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
                { name: 'NODEMESH_WAYPOINT_HBONE_PORT', value: String(WAYPOINT_HBONE_PORT) },
                { name: 'NODEMESH_WAYPOINT_READINESS_PORT', value: String(READINESS_PORT) },
                { name: 'NODEMESH_TRUST_DOMAIN', value: v.trustDomain },
                { name: 'NODEMESH_LOG_LEVEL', value: v.logLevel },
                { name: 'NODEMESH_IDENTITY_ADDRESS', value: `${IDENTITY_NAME}.${NAMESPACE}.svc:${IDENTITY_PORT}` },
                { name: 'NODEMESH_NODE_CREDENTIAL_FILE', value: `${TOKEN_DIR}/${TOKEN_FILE}` },
                { name: 'NODEMESH_CA_ROOT_FILE', value: `${CA_ROOT_DIR}/${CA_CERT_ENTRY}` },
                { name: 'NODEMESH_WAYPOINT_SIGNING_KEY_FILE', value: `${SIGNING_KEY_DIR}/${SIGNING_KEY_ENTRY}` },
              ],
              ports: [{ name: 'hbone', containerPort: WAYPOINT_HBONE_PORT }, { name: 'readiness', containerPort: READINESS_PORT }],
              readinessProbe: { httpGet: { path: '/healthz/ready', port: READINESS_PORT } },
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } },
              securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: WAYPOINT_UID, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'identity-token', mountPath: TOKEN_DIR, readOnly: true },
                { name: 'ca-root', mountPath: CA_ROOT_DIR, readOnly: true },
                { name: 'caller-statement-key', mountPath: SIGNING_KEY_DIR, readOnly: true },
              ],
            }],
            volumes: [
              {
                name: 'identity-token',
                projected: { sources: [{ serviceAccountToken: { audience: IDENTITY_TOKEN_AUDIENCE, expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: TOKEN_FILE } }] },
              },
              { name: 'ca-root', configMap: { name: waypointCaRootName(gw.name) } },
              { name: 'caller-statement-key', secret: { secretName: waypointSigningKeyName(gw.name), defaultMode: 0o440 } },
            ],
          },
        },
      },
    }),
    new Service({
      metadata,
      spec: { selector, ports: [{ name: 'hbone', port: WAYPOINT_HBONE_PORT, targetPort: WAYPOINT_HBONE_PORT, appProtocol: 'https' }] },
    }),
    waypointClusterRoleBinding(labels, gw, gw.name),
  ];
}

/** The copy of the mesh CA root in the waypoint's namespace (a pod mounts only ConfigMaps of
 * its own namespace); the controller writes it from nodemesh-system's. */
export const waypointCaRootName = (gateway: string): string => `${gateway}-ca-root`;

/** The Secret holding the waypoint's caller-statement signing key. */
export const waypointSigningKeyName = (gateway: string): string => `${gateway}-caller-statement-key`;

/** The public halves of every waypoint's key, in the install namespace: { SPIFFE ID: key } in
 * one entry named as the file the node daemons read beside the CA root (their DaemonSet
 * projects this ConfigMap and the CA root into one directory). Written by the controller. */
export const WAYPOINT_KEYS_ENTRY = TRUST_FILE_NAME;

export function waypointKeysConfigMap(v: ManifestValues, document: string): ConfigMap {
  return new ConfigMap({
    metadata: { name: WAYPOINT_KEYS_CONFIGMAP_NAME, namespace: NAMESPACE, labels: commonLabels(v, WAYPOINT_KEYS_CONFIGMAP_NAME) },
    data: { [WAYPOINT_KEYS_ENTRY]: document },
  });
}
