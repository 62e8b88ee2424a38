// The status of a waypoint Gateway and of the nodemesh-waypoint GatewayClass, pure. Reasons are
// the Gateway API's: Accepted/Accepted; Programmed/Programmed when the waypoint Deployment has
// an available replica and its Service a cluster IP, else Pending or AddressNotAssigned.
import { condition, type Condition } from './conditions';
import { CONTROLLER_NAME, type KubeObject } from './kube-object';

export interface GatewayStatus {
  conditions: Condition[];
  addresses: { type: 'IPAddress'; value: string }[];
}

export function deploymentAvailable(d: KubeObject | undefined): boolean {
  const n = d?.status?.availableReplicas;
  return typeof n === 'number' && n >= 1;
}

export function serviceAddress(s: KubeObject | undefined): string | undefined {
  const ip = s?.spec?.clusterIP;
  return typeof ip === 'string' && ip !== '' && ip !== 'None' ? ip : undefined;
}

export function gatewayStatus(gw: KubeObject, deployment: KubeObject | undefined, service: KubeObject | undefined, now: string): GatewayStatus {
  const gen = gw.metadata.generation;
  const prev: Condition[] | undefined = Array.isArray(gw.status?.conditions) ? gw.status.conditions : undefined;
  const where = `${gw.metadata.namespace}/${gw.metadata.name}`;
  const address = serviceAddress(service);
  const accepted = condition('Accepted', true, 'Accepted', 'Accepted by the nodemesh waypoint controller', gen, now, prev);
  let programmed: Condition;
  if (!deployment) programmed = condition('Programmed', false, 'Pending', `waiting for the waypoint Deployment ${where} to be created`, gen, now, prev);
  else if (!deploymentAvailable(deployment)) programmed = condition('Programmed', false, 'Pending', `waiting for the waypoint Deployment ${where} to have an available replica`, gen, now, prev);
  else if (!address) programmed = condition('Programmed', false, 'AddressNotAssigned', `the waypoint Service ${where} has no cluster IP yet`, gen, now, prev);
  else programmed = condition('Programmed', true, 'Programmed', `waypoint ready at ${address}`, gen, now, prev);
  return { conditions: [accepted, programmed], addresses: address ? [{ type: 'IPAddress', value: address }] : [] };
}

/** The GatewayClass status when it names this controller; undefined when it is not ours. */
export function gatewayClassStatus(gc: KubeObject, now: string): { conditions: Condition[] } | undefined {
  if (gc.spec?.controllerName !== CONTROLLER_NAME) return undefined;
  const prev: Condition[] | undefined = Array.isArray(gc.status?.conditions) ? gc.status.conditions : undefined;
  return { conditions: [condition('Accepted', true, 'Accepted', 'Handled by the nodemesh waypoint controller', gc.metadata.generation, now, prev)] };
}
