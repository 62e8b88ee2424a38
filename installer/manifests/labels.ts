// Labels every nodemesh object carries: the recommended app.kubernetes.io set, so `uninstall`
// and `status` find what `install` created by label, and kubectl users see what it is.
import type { ManifestValues } from './values';

export const PART_OF = 'nodemesh';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
export const PART_OF_SELECTOR = `${PART_OF_LABEL}=${PART_OF}`;

export function commonLabels(v: ManifestValues, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': component,
    'app.kubernetes.io/component': component,
    [PART_OF_LABEL]: PART_OF,
    'app.kubernetes.io/version': v.version,
    [MANAGED_BY_LABEL]: 'nodemesh',
  };
}

/** Selector labels: stable across versions (a Deployment's selector is immutable). */
export function selectorLabels(component: string): Record<string, string> {
  return { 'app.kubernetes.io/name': component, [PART_OF_LABEL]: PART_OF };
}
