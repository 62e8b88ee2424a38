// Loads proto/identity.proto once, at runtime. tsc does not copy .proto files to dist/, so
// the file is looked up next to this module (running from sources) and then relative to the
// repository root (running from dist/daemon/identity/). One loader, one error that lists
// every path it tried.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { DaemonErrors } from '../errors';

export const IDENTITY_SERVICE_NAME = 'nodemesh.identity.v1.IdentityService';

/** Request and response as proto-loader hands them over (camelCase fields, int64 as number). */
export interface CreateCertificateRequest {
  csr: string;
  validitySeconds: number;
}
export interface CreateCertificateResponse {
  certChain: string[];
  trustBundle: string[];
}

export interface IdentityServiceClient extends grpc.Client {
  CreateCertificate(
    req: CreateCertificateRequest, metadata: grpc.Metadata, options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: CreateCertificateResponse) => void,
  ): grpc.ClientUnaryCall;
}

export interface IdentityProto {
  service: grpc.ServiceDefinition;
  Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => IdentityServiceClient;
}

export function identityProtoCandidates(): string[] {
  return [
    path.resolve(__dirname, 'proto', 'identity.proto'),
    path.resolve(__dirname, '..', '..', '..', 'daemon', 'identity', 'proto', 'identity.proto'),
  ];
}

let cached: IdentityProto | undefined;

export function loadIdentityProto(): IdentityProto {
  if (cached) return cached;
  const tried = identityProtoCandidates();
  const file = tried.find((p) => fs.existsSync(p));
  if (!file) throw DaemonErrors.NODEMESH_E_IDENTITY_PROTO_MISSING({ tried });
  const def = protoLoader.loadSync(file, { keepCase: false, longs: Number, enums: String, defaults: true, arrays: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    nodemesh: { identity: { v1: { IdentityService: grpc.ServiceClientConstructor } } };
  };
  const ctor = pkg.nodemesh.identity.v1.IdentityService;
  cached = { service: ctor.service, Client: ctor as unknown as IdentityProto['Client'] };
  return cached;
}
