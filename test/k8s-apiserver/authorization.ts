// Authorization as RBAC decides it: `system:masters` may do anything; everyone else gets what
// the rules given to a test user plus the stored Roles, ClusterRoles and their bindings allow.
// Discovery and /version are open to authenticated users, /version and health to everyone,
// as the default system:discovery and system:public-info-viewer roles make them.
import type { KubeObject } from './resource-types';

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export interface ResourceAttributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export interface RbacObjects {
  clusterRoles: KubeObject[];
  clusterRoleBindings: KubeObject[];
  roles(namespace: string): KubeObject[];
  roleBindings(namespace: string): KubeObject[];
}

const PUBLIC_PATHS = ['/version', '/version/', '/healthz', '/livez', '/readyz'];

export function nonResourceAllowed(user: UserInfo, path: string): boolean {
  if (user.groups.includes('system:masters')) return true;
  if (PUBLIC_PATHS.includes(path)) return true;
  if (!user.groups.includes('system:authenticated')) return false;
  return path === '/api' || path === '/apis' || path.startsWith('/api/') || path.startsWith('/apis/') || path.startsWith('/openapi');
}

function has(list: string[] | undefined, v: string): boolean {
  return (list ?? []).includes('*') || (list ?? []).includes(v);
}

export function ruleAllows(rule: PolicyRule, a: ResourceAttributes): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!has(rule.apiGroups, a.group)) return false;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resources = rule.resources ?? [];
  const resourceOk = resources.includes('*') || resources.includes(res) || (a.subresource !== undefined && resources.includes(`*/${a.subresource}`));
  if (!resourceOk) return false;
  if (rule.resourceNames && rule.resourceNames.length > 0) return a.name !== undefined && rule.resourceNames.includes(a.name);
  return true;
}

function subjectMatches(subject: any, user: UserInfo): boolean {
  switch (subject?.kind) {
    case 'User': return subject.name === user.username;
    case 'Group': return user.groups.includes(subject.name);
    case 'ServiceAccount': return user.username === `system:serviceaccount:${subject.namespace}:${subject.name}`;
    default: return false;
  }
}

function rulesOfRef(ref: any, namespace: string | undefined, rbac: RbacObjects): PolicyRule[] {
  if (ref?.kind === 'ClusterRole') return rbac.clusterRoles.find((r) => r.metadata.name === ref.name)?.rules ?? [];
  if (ref?.kind === 'Role' && namespace) return rbac.roles(namespace).find((r) => r.metadata.name === ref.name)?.rules ?? [];
  return [];
}

export function resourceAllowed(user: UserInfo, a: ResourceAttributes, staticRules: PolicyRule[], rbac: RbacObjects): boolean {
  if (user.groups.includes('system:masters')) return true;
  if (staticRules.some((r) => ruleAllows(r, a))) return true;
  for (const b of rbac.clusterRoleBindings) {
    if ((b.subjects ?? []).some((s: unknown) => subjectMatches(s, user)) && rulesOfRef(b.roleRef, undefined, rbac).some((r) => ruleAllows(r, a))) return true;
  }
  if (a.namespace) {
    for (const b of rbac.roleBindings(a.namespace)) {
      if ((b.subjects ?? []).some((s: unknown) => subjectMatches(s, user)) && rulesOfRef(b.roleRef, a.namespace, rbac).some((r) => ruleAllows(r, a))) return true;
    }
  }
  return false;
}
