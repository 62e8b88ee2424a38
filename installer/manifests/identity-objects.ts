// nodemesh-identity: two replicas (on different nodes when possible) behind one Service, both
// signing with the CA read from the same Secret, and a PodDisruptionBudget so a node drain
// never takes both away while daemons renew certificates.
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { commonLabels, selectorLabels } from './labels';
import { IDENTITY_COMMAND, image } from './node-daemonset';
import { CA_ROOT_CONFIGMAP_NAME, CA_SECRET_NAME, IDENTITY_NAME, IDENTITY_PORT, IDENTITY_TOKEN_AUDIENCE, NAMESPACE, NODE_NAME, type ManifestValues } from './values';

export const IDENTITY_DNS_NAMES = [`${IDENTITY_NAME}.${NAMESPACE}.svc`, `${IDENTITY_NAME}.${NAMESPACE}.svc.cluster.local`];

export function identityDeployment(v: ManifestValues): Deployment {
  const labels = commonLabels(v, IDENTITY_NAME);
  return new Deployment({
    metadata: { name: IDENTITY_NAME, namespace: NAMESPACE, labels },
    spec: {
      replicas: v.identityReplicas,
      selector: { matchLabels: selectorLabels(IDENTITY_NAME) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: { ...labels, ...selectorLabels(IDENTITY_NAME) } },
        spec: {
          serviceAccountName: IDENTITY_NAME,
          priorityClassName: 'system-cluster-critical',
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [{
                weight: 100,
                podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selectorLabels(IDENTITY_NAME) } },
              }],
            },
          },
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name: IDENTITY_NAME,
            image: image(v),
            imagePullPolicy: v.imagePullPolicy,
            command: IDENTITY_COMMAND,
            env: [
              { name: 'NODEMESH_SOURCE', value: 'kube' },
              { name: 'NODEMESH_IDENTITY_LISTEN', value: `0.0.0.0:${IDENTITY_PORT}` },
              { name: 'NODEMESH_TRUST_DOMAIN', value: v.trustDomain },
              { name: 'NODEMESH_LOG_LEVEL', value: v.logLevel },
              { name: 'NODEMESH_CA_SECRET', value: `${NAMESPACE}/${CA_SECRET_NAME}` },
              { name: 'NODEMESH_CA_ROOT_CONFIGMAP', value: `${NAMESPACE}/${CA_ROOT_CONFIGMAP_NAME}` },
              { name: 'NODEMESH_TOKEN_AUDIENCE', value: IDENTITY_TOKEN_AUDIENCE },
              { name: 'NODEMESH_NODE_SERVICE_ACCOUNT', value: `${NAMESPACE}/${NODE_NAME}` },
              { name: 'NODEMESH_IDENTITY_DNS_NAMES', value: IDENTITY_DNS_NAMES.join(',') },
            ],
            ports: [{ name: 'grpc-identity', containerPort: IDENTITY_PORT, protocol: 'TCP' }],
            readinessProbe: { tcpSocket: { port: IDENTITY_PORT }, periodSeconds: 5 },
            resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '512Mi' } },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          }],
        },
      },
    },
  });
}

export function identityService(v: ManifestValues): Service {
  return new Service({
    metadata: { name: IDENTITY_NAME, namespace: NAMESPACE, labels: commonLabels(v, IDENTITY_NAME) },
    spec: {
      selector: selectorLabels(IDENTITY_NAME),
      ports: [{ name: 'grpc-identity', port: IDENTITY_PORT, targetPort: IDENTITY_PORT, protocol: 'TCP', appProtocol: 'grpc' }],
    },
  });
}

export function identityPdb(v: ManifestValues): PodDisruptionBudget {
  return new PodDisruptionBudget({
    metadata: { name: IDENTITY_NAME, namespace: NAMESPACE, labels: commonLabels(v, IDENTITY_NAME) },
    spec: { minAvailable: 1, selector: { matchLabels: selectorLabels(IDENTITY_NAME) } },
  });
}
