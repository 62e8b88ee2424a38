// The status of a waypoint Gateway and of the nodemesh-waypoint GatewayClass, pure. Reasons are
// the Gateway API's: Accepted/Accepted; Programmed/Programmed when the waypoint Deployment has
// an available replica and its Service a cluster IP, else Pending or AddressNotAssigned. A
// waypoint listens for HBONE (port 15008): a listener of another protocol is not accepted
// (UnsupportedProtocol) and the Gateway says ListenersNotValid. Routes attach to Services, not
// to the waypoint's listeners (GAMMA), so no listener has attached routes.
import { condition, type Condition } from './conditions';
import { CONTROLLER_NAME, type KubeObject } from './kube-object';

export const WAYPOINT_PROTOCOL = 'HBONE';

export interface ListenerStatus {
  name: string;
  supportedKinds: { group?: string; kind: string }[];
  attachedRoutes: number;
  conditions: Condition[];
}

export interface GatewayStatus {
  conditions: Condition[];
  addresses: { type: 'IPAddress'; value: string }[];
  listeners: ListenerStatus[];
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
  const listeners: { name: string; protocol: unknown }[] = (Array.isArray(gw.spec?.listeners) ? gw.spec.listeners : [])
    .filter((l: unknown) => typeof (l as { name?: unknown })?.name === 'string');
  const bad = listeners.filter((l) => l.protocol !== WAYPOINT_PROTOCOL);
  const accepted = bad.length === 0
    ? condition('Accepted', true, 'Accepted', 'Accepted by the nodemesh waypoint controller', gen, now, prev)
    : condition('Accepted', bad.length < listeners.length, 'ListenersNotValid', `listener ${bad[0].name}: a waypoint listens for ${WAYPOINT_PROTOCOL} only`, gen, now, prev);
  let programmed: Condition;
  if (!deployment) programmed = condition('Programmed', false, 'Pending', `waiting for the waypoint Deployment ${where} to be created`, gen, now, prev);
  else if (!deploymentAvailable(deployment)) programmed = condition('Programmed', false, 'Pending', `waiting for the waypoint Deployment ${where} to have an available replica`, gen, now, prev);
  else if (!address) programmed = condition('Programmed', false, 'AddressNotAssigned', `the waypoint Service ${where} has no cluster IP yet`, gen, now, prev);
  else programmed = condition('Programmed', true, 'Programmed', `waypoint ready at ${address}`, gen, now, prev);
  const listenerStatus = listeners.map((l): ListenerStatus => {
    const before: Condition[] | undefined = (Array.isArray(gw.status?.listeners) ? gw.status.listeners : []).find((x: { name?: string }) => x?.name === l.name)?.conditions;
    const ok = l.protocol === WAYPOINT_PROTOCOL;
    return {
      name: l.name, supportedKinds: [], attachedRoutes: 0,
      conditions: [
        ok ? condition('Accepted', true, 'Accepted', 'Listener accepted', gen, now, before)
          : condition('Accepted', false, 'UnsupportedProtocol', `protocol ${String(l.protocol)} is not supported; a waypoint listens for ${WAYPOINT_PROTOCOL}`, gen, now, before),
        ok ? condition('Programmed', programmed.status === 'True', programmed.status === 'True' ? 'Programmed' : 'Pending', programmed.message, gen, now, before)
          : condition('Programmed', false, 'Invalid', 'Listener not accepted', gen, now, before),
        condition('ResolvedRefs', true, 'ResolvedRefs', 'No references to resolve', gen, now, before),
      ],
    };
  });
  return { conditions: [accepted, programmed], addresses: address ? [{ type: 'IPAddress', value: address }] : [], listeners: listenerStatus };
}

/** The GatewayClass status when it names this controller; undefined when it is not ours. */
export function gatewayClassStatus(gc: KubeObject, now: string): { conditions: Condition[] } | undefined {
  if (gc.spec?.controllerName !== CONTROLLER_NAME) return undefined;
  const prev: Condition[] | undefined = Array.isArray(gc.status?.conditions) ? gc.status.conditions : undefined;
  return { conditions: [condition('Accepted', true, 'Accepted', 'Handled by the nodemesh waypoint controller', gc.metadata.generation, now, prev)] };
}
