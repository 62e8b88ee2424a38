// The certificates and the HBONE client a proxy process needs (node daemon and sidecar alike):
// both exist only when an identity service is configured; without them meshed destinations are
// refused (fail closed).
import type { Logger } from 'pino';
import type { NodeConfig } from './config';
import { CertificateManager } from './identity/certificate-manager';
import { IdentityClient } from './identity/identity-client';
import { HboneClient } from './tunnel/hbone-client';

export function tunnelIdentities(cfg: Readonly<NodeConfig>, log: Logger): { identities?: CertificateManager; hbone?: HboneClient } {
  const idc = cfg.identity;
  if (!idc) return {};
  const client = IdentityClient.fromConfig(idc);
  return {
    identities: new CertificateManager({ fetch: (id) => client.fetchIdentity(id, idc.certTtlSeconds), logger: log.child({ component: 'certificates' }) }),
    hbone: new HboneClient({ log: log.child({ component: 'hbone-client' }) }),
  };
}
