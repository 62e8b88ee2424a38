// The mesh CA's two objects. The Secret (ca.key + ca.crt) is read only by nodemesh-identity;
// the ConfigMap carries just the root certificate, for the node daemons (every node holding
// the CA key would make every node a CA). Both are rendered EMPTY: the key is generated at
// install time (`nodemesh install`, with daemon/identity/ca.ts) and written with its own
// field manager, so it never appears in `manifest render`, in a Helm release or in an apply
// by the `nodemesh` field manager (which would then own, and on the next apply remove, it).
// A Helm-only install leaves them empty and nodemesh-identity fills them on first start.
import { Secret } from 'kubernetes-models/v1/Secret';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { commonLabels } from './labels';
import { CA_ROOT_CONFIGMAP_NAME, CA_SECRET_NAME, IDENTITY_NAME, NAMESPACE, type ManifestValues } from './values';

export const CA_KEY_ENTRY = 'ca.key';
export const CA_CERT_ENTRY = 'ca.crt';
/** The field manager that writes the CA material (never `nodemesh`, see above). */
export const CA_FIELD_MANAGER = 'nodemesh-ca';
export const CA_PLACEHOLDER_ANNOTATION = 'nodemesh.io/ca-material';
const PLACEHOLDER_TEXT = 'generated at install (nodemesh install) or by nodemesh-identity on first start; never rendered';

export function caSecret(v: ManifestValues): Secret {
  return new Secret({
    metadata: {
      name: CA_SECRET_NAME, namespace: NAMESPACE, labels: commonLabels(v, IDENTITY_NAME),
      // helm uninstall keeps the CA: workload certificates stay verifiable and a reinstall
      // keeps the same root. `nodemesh uninstall` deletes it explicitly.
      annotations: { [CA_PLACEHOLDER_ANNOTATION]: PLACEHOLDER_TEXT, 'helm.sh/resource-policy': 'keep' },
    },
    type: 'Opaque',
  });
}

export function caRootConfigMap(v: ManifestValues): ConfigMap {
  return new ConfigMap({
    metadata: {
      name: CA_ROOT_CONFIGMAP_NAME, namespace: NAMESPACE, labels: commonLabels(v, IDENTITY_NAME),
      annotations: { [CA_PLACEHOLDER_ANNOTATION]: PLACEHOLDER_TEXT, 'helm.sh/resource-policy': 'keep' },
    },
  });
}

/** The CA material as Secret data (base64) and ConfigMap data (the root only). */
export function caMaterial(keyPem: string, certPem: string): { secretData: Record<string, string>; configMapData: Record<string, string> } {
  return {
    secretData: { [CA_KEY_ENTRY]: Buffer.from(keyPem).toString('base64'), [CA_CERT_ENTRY]: Buffer.from(certPem).toString('base64') },
    configMapData: { [CA_CERT_ENTRY]: certPem },
  };
}
