// The built-in resources, with what the API server itself does on create (defaults, Service
// cluster IP allocation) and the few validations tests can provoke. Controllers do nothing
// here: no EndpointSlices, no pods from Deployments, no status unless a test writes it.
import { FieldErrors, type StatusCause } from './status';
import type { DefaultingContext, KubeObject, ResourceType } from './resource-types';

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(t: Partial<ResourceType> & Pick<ResourceType, 'group' | 'version' | 'plural' | 'kind' | 'namespaced'>): ResourceType {
  return {
    singular: t.kind.toLowerCase(),
    verbs: RW,
    subresources: [],
    hasGeneration: false,
    returnsDeletedObject: false,
    nameRule: 'dns1123-subdomain',
    selectableFields: [],
    bookmarkBody: {},
    ...t,
  };
}

function setDefault(obj: Record<string, any>, key: string, value: unknown): void {
  if (obj[key] === undefined) obj[key] = value;
}

function portProblems(ports: unknown, path: string, targetKey?: string): StatusCause[] {
  if (!Array.isArray(ports)) return [];
  const out: StatusCause[] = [];
  ports.forEach((p: any, i: number) => {
    for (const key of ['port', ...(targetKey ? [targetKey] : [])]) {
      const v = p?.[key];
      if (typeof v === 'number' && (v < 1 || v > 65535 || !Number.isInteger(v))) {
        out.push(FieldErrors.invalid(`${path}[${i}].${key}`, v, 'must be between 1 and 65535, inclusive'));
      }
    }
    if (p?.protocol !== undefined && !['TCP', 'UDP', 'SCTP'].includes(p.protocol)) {
      out.push(FieldErrors.notSupported(`${path}[${i}].protocol`, p.protocol, ['SCTP', 'TCP', 'UDP']));
    }
  });
  return out;
}

function selectorMatchesTemplate(obj: KubeObject): StatusCause[] {
  const spec = obj.spec ?? {};
  const out: StatusCause[] = [];
  const matchLabels = spec.selector?.matchLabels;
  if (spec.selector === undefined) {
    out.push(FieldErrors.required('spec.selector'));
    return out;
  }
  const tmplLabels = spec.template?.metadata?.labels ?? {};
  if (matchLabels && Object.entries(matchLabels).some(([k, v]) => tmplLabels[k] !== v)) {
    out.push(FieldErrors.invalid('spec.template.metadata.labels', tmplLabels, '`selector` does not match template `labels`'));
  }
  if (!Array.isArray(spec.template?.spec?.containers) || spec.template.spec.containers.length === 0) {
    out.push(FieldErrors.required('spec.template.spec.containers'));
  }
  return out;
}

/** isPod: the service account admission plugin runs on pods, not on templates. */
function podDefaults(spec: Record<string, any>, isPod: boolean): void {
  setDefault(spec, 'restartPolicy', 'Always');
  setDefault(spec, 'terminationGracePeriodSeconds', 30);
  setDefault(spec, 'dnsPolicy', 'ClusterFirst');
  setDefault(spec, 'securityContext', {});
  setDefault(spec, 'schedulerName', 'default-scheduler');
  setDefault(spec, 'enableServiceLinks', true);
  for (const c of spec.containers ?? []) {
    setDefault(c, 'resources', {});
    setDefault(c, 'terminationMessagePath', '/dev/termination-log');
    setDefault(c, 'terminationMessagePolicy', 'File');
    setDefault(c, 'imagePullPolicy', typeof c.image === 'string' && !c.image.includes(':') ? 'Always' : 'IfNotPresent');
    for (const p of c.ports ?? []) setDefault(p, 'protocol', 'TCP');
  }
  if (isPod) {
    setDefault(spec, 'serviceAccountName', 'default');
    spec.serviceAccount = spec.serviceAccountName;
  }
}

function podTemplateDefaults(obj: KubeObject): void {
  const tspec = obj.spec?.template?.spec;
  if (tspec && typeof tspec === 'object') podDefaults(tspec, false);
}

export const BUILTIN_RESOURCES: ResourceType[] = [
  builtin({
    group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], subresources: ['status'],
    nameRule: 'dns1123-label', returnsDeletedObject: true, selectableFields: ['status.phase'],
    bookmarkBody: { spec: {}, status: {} },
    defaults: (obj) => {
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name };
      obj.spec = { finalizers: ['kubernetes'], ...(obj.spec ?? {}) };
      obj.status = { phase: 'Active' };
    },
  }),
  builtin({
    group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false, shortNames: ['no'], subresources: ['status'],
    bookmarkBody: { spec: {}, status: { daemonEndpoints: { kubeletEndpoint: { Port: 0 } }, nodeInfo: {} } },
    defaults: (obj) => {
      obj.spec = obj.spec ?? {};
      obj.status = obj.status ?? {};
    },
  }),
  builtin({
    group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, shortNames: ['po'], categories: ['all'],
    subresources: ['status'], hasGeneration: true, returnsDeletedObject: true,
    selectableFields: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
    bookmarkBody: { spec: { containers: null }, status: {} },
    defaults: (obj) => {
      obj.spec = obj.spec ?? {};
      podDefaults(obj.spec, true);
      obj.status = { phase: 'Pending', qosClass: 'BestEffort', ...(obj.status ?? {}) };
    },
    validate: (obj) => {
      const out: StatusCause[] = [];
      const containers = obj.spec?.containers;
      if (!Array.isArray(containers) || containers.length === 0) out.push(FieldErrors.required('spec.containers'));
      else containers.forEach((c: any, i: number) => {
        if (!c?.name) out.push(FieldErrors.required(`spec.containers[${i}].name`));
        if (!c?.image) out.push(FieldErrors.required(`spec.containers[${i}].image`));
      });
      return out;
    },
  }),
  builtin({
    group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true, shortNames: ['svc'], categories: ['all'],
    subresources: ['status'], nameRule: 'dns1035-label', returnsDeletedObject: true,
    bookmarkBody: { spec: {}, status: { loadBalancer: {} } },
    defaults: (obj, ctx: DefaultingContext) => {
      const spec = (obj.spec = obj.spec ?? {});
      setDefault(spec, 'type', 'ClusterIP');
      for (const p of spec.ports ?? []) {
        setDefault(p, 'protocol', 'TCP');
        setDefault(p, 'targetPort', p.port);
      }
      if (spec.type !== 'ExternalName') {
        if (spec.clusterIP === undefined) spec.clusterIP = ctx.allocateClusterIP();
        if (spec.clusterIPs === undefined) spec.clusterIPs = [spec.clusterIP];
        setDefault(spec, 'ipFamilies', [String(spec.clusterIP).includes(':') ? 'IPv6' : 'IPv4']);
        setDefault(spec, 'ipFamilyPolicy', 'SingleStack');
        setDefault(spec, 'internalTrafficPolicy', 'Cluster');
      }
      setDefault(spec, 'sessionAffinity', 'None');
      obj.status = obj.status ?? { loadBalancer: {} };
    },
    validate: (obj) => portProblems(obj.spec?.ports, 'spec.ports', 'targetPort'),
  }),
  builtin({ group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true, shortNames: ['sa'], subresources: ['token'] }),
  builtin({ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'] }),
  builtin({
    group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true, selectableFields: ['type'],
    defaults: (obj) => setDefault(obj, 'type', 'Opaque'),
    validate: (obj) => {
      const out: StatusCause[] = [];
      for (const [k, v] of Object.entries(obj.data ?? {})) {
        if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) out.push(FieldErrors.invalid(`data[${k}]`, '<secret contents redacted>', 'illegal base64 data'));
      }
      return out;
    },
  }),
  builtin({
    group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true, hasGeneration: true,
    validate: (obj) => {
      const out: StatusCause[] = [];
      if (!['IPv4', 'IPv6', 'FQDN'].includes(obj.addressType)) out.push(obj.addressType === undefined ? FieldErrors.required('addressType') : FieldErrors.notSupported('addressType', obj.addressType, ['FQDN', 'IPv4', 'IPv6']));
      (obj.endpoints ?? []).forEach((e: any, i: number) => {
        if (!Array.isArray(e?.addresses) || e.addresses.length === 0) out.push(FieldErrors.required(`endpoints[${i}].addresses`));
      });
      return [...out, ...portProblems(obj.ports, 'ports')];
    },
  }),
  builtin({
    group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true, shortNames: ['deploy'], categories: ['all'],
    subresources: ['status'], hasGeneration: true,
    defaults: (obj) => {
      const spec = (obj.spec = obj.spec ?? {});
      setDefault(spec, 'replicas', 1);
      setDefault(spec, 'strategy', { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } });
      setDefault(spec, 'revisionHistoryLimit', 10);
      setDefault(spec, 'progressDeadlineSeconds', 600);
      podTemplateDefaults(obj);
      obj.status = obj.status ?? {};
    },
    validate: selectorMatchesTemplate,
  }),
  builtin({
    group: 'apps', version: 'v1', plural: 'daemonsets', kind: 'DaemonSet', namespaced: true, shortNames: ['ds'], categories: ['all'],
    subresources: ['status'], hasGeneration: true,
    defaults: (obj) => {
      const spec = (obj.spec = obj.spec ?? {});
      setDefault(spec, 'updateStrategy', { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
      setDefault(spec, 'revisionHistoryLimit', 10);
      podTemplateDefaults(obj);
      obj.status = obj.status ?? { currentNumberScheduled: 0, numberMisscheduled: 0, desiredNumberScheduled: 0, numberReady: 0 };
    },
    validate: selectorMatchesTemplate,
  }),
  builtin({
    group: 'apps', version: 'v1', plural: 'replicasets', kind: 'ReplicaSet', namespaced: true, shortNames: ['rs'], categories: ['all'],
    subresources: ['status'], hasGeneration: true,
    defaults: (obj) => {
      const spec = (obj.spec = obj.spec ?? {});
      setDefault(spec, 'replicas', 1);
      podTemplateDefaults(obj);
      obj.status = obj.status ?? { replicas: 0 };
    },
    validate: selectorMatchesTemplate,
  }),
  builtin({
    group: 'policy', version: 'v1', plural: 'poddisruptionbudgets', kind: 'PodDisruptionBudget', namespaced: true, shortNames: ['pdb'],
    subresources: ['status'], hasGeneration: true,
    defaults: (obj) => {
      obj.status = obj.status ?? { disruptionsAllowed: 0, currentHealthy: 0, desiredHealthy: 0, expectedPods: 0 };
    },
    validate: (obj) => (obj.spec?.minAvailable !== undefined && obj.spec?.maxUnavailable !== undefined
      ? [FieldErrors.invalid('spec', obj.spec, 'minAvailable and maxUnavailable cannot be both set')]
      : []),
  }),
  builtin({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', kind: 'Role', namespaced: true, nameRule: 'path-segment' }),
  builtin({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', kind: 'RoleBinding', namespaced: true, nameRule: 'path-segment', validate: roleRefProblems }),
  builtin({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', kind: 'ClusterRole', namespaced: false, nameRule: 'path-segment' }),
  builtin({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false, nameRule: 'path-segment', validate: roleRefProblems }),
  builtin({ group: 'authentication.k8s.io', version: 'v1', plural: 'tokenreviews', kind: 'TokenReview', namespaced: false, verbs: ['create'], virtual: true }),
  builtin({
    group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false,
    shortNames: ['crd', 'crds'], subresources: ['status'], hasGeneration: true, returnsDeletedObject: true,
  }),
];

function roleRefProblems(obj: KubeObject, old: KubeObject | undefined): StatusCause[] {
  const out: StatusCause[] = [];
  const ref = obj.roleRef;
  if (!ref?.name) out.push(FieldErrors.required('roleRef.name'));
  if (ref?.kind !== undefined && !['Role', 'ClusterRole'].includes(ref.kind)) out.push(FieldErrors.notSupported('roleRef.kind', ref.kind, ['ClusterRole', 'Role']));
  if (old && JSON.stringify(old.roleRef) !== JSON.stringify(ref)) out.push(FieldErrors.invalid('roleRef', ref, 'cannot change roleRef'));
  return out;
}
