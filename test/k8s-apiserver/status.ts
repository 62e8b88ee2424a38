// Status objects (meta/v1 Status) exactly as a kube-apiserver shapes them: kind Status,
// apiVersion v1, metadata {}, status Failure, message, reason, details, code. The messages
// follow apimachinery's errors package (k8s.io/apimachinery/pkg/api/errors), checked against
// the recorded responses in shared/k8s-wire (06, 07, 08, 17, 19, 21, 25, 26).

export interface StatusCause { reason: string; message: string; field: string }

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, unknown>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** A failure Status travelling as an exception through the request handler. */
export class ApiError extends Error {
  constructor(readonly status: Status, readonly headers: Record<string, string> = {}) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
  }
}

/** What names a resource in messages: `pods`, `deployments.apps`. */
export interface ResourceRef { group: string; plural: string }

export function qualifiedResource(r: ResourceRef): string {
  return r.group === '' ? r.plural : `${r.plural}.${r.group}`;
}

function failure(code: number, reason: string, message: string, details?: StatusDetails): Status {
  // Key order as the real server encodes it: details between reason and code.
  const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details === undefined) return s;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code };
}

function resourceDetails(r: ResourceRef, name?: string): StatusDetails {
  const d: StatusDetails = {};
  if (name !== undefined && name !== '') d.name = name;
  if (r.group !== '') d.group = r.group;
  d.kind = r.plural;
  return d;
}

export const Statuses = {
  notFound(r: ResourceRef, name: string): Status {
    return failure(404, 'NotFound', `${qualifiedResource(r)} "${name}" not found`, resourceDetails(r, name));
  },
  alreadyExists(r: ResourceRef, name: string): Status {
    return failure(409, 'AlreadyExists', `${qualifiedResource(r)} "${name}" already exists`, resourceDetails(r, name));
  },
  conflict(r: ResourceRef, name: string, why: string): Status {
    return failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(r)} "${name}": ${why}`, resourceDetails(r, name));
  },
  staleResourceVersion(r: ResourceRef, name: string): Status {
    return Statuses.conflict(r, name, 'the object has been modified; please apply your changes to the latest version and try again');
  },
  /** kindWithGroup: `Service`, `Deployment.apps`, `Widget.example.com`. */
  invalid(kind: string, group: string, name: string, causes: StatusCause[]): Status {
    const kindWithGroup = group === '' ? kind : `${kind}.${group}`;
    const parts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
    const list = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
    const details: StatusDetails = { name, ...(group !== '' ? { group } : {}), kind, causes };
    return failure(422, 'Invalid', `${kindWithGroup} "${name}" is invalid: ${list}`, details);
  },
  badRequest(message: string): Status {
    return failure(400, 'BadRequest', message);
  },
  unauthorized(): Status {
    return failure(401, 'Unauthorized', 'Unauthorized');
  },
  /** `pods is forbidden: User "x" cannot list resource "pods" in API group "" at the cluster scope` */
  forbidden(user: string, verb: string, r: ResourceRef & { subresource?: string }, namespace: string | undefined, name: string | undefined): Status {
    const resource = r.subresource ? `${r.plural}/${r.subresource}` : r.plural;
    const subject = name ? `${qualifiedResource(r)} "${name}"` : qualifiedResource(r);
    const scope = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
    const message = `${subject} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${r.group}" ${scope}`;
    return failure(403, 'Forbidden', message, resourceDetails(r, name));
  },
  forbiddenWithReason(r: ResourceRef, name: string, why: string): Status {
    return failure(403, 'Forbidden', `${qualifiedResource(r)} "${name}" is forbidden: ${why}`, resourceDetails(r, name));
  },
  methodNotAllowed(): Status {
    return failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  },
  resourceNotFound(): Status {
    return failure(404, 'NotFound', 'the server could not find the requested resource', {});
  },
  unsupportedMediaType(contentType: string): Status {
    return failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${contentType})`);
  },
  /** 410 for a list at an exact resourceVersion the store no longer holds (05). */
  listTooOld(): Status {
    return failure(410, 'Expired', 'The resourceVersion for the provided list is too old.');
  },
  /** 410 carried in a watch ERROR event (04): `too old resource version: <asked> (<oldest>)`. */
  watchTooOld(asked: number, oldest: number): Status {
    return failure(410, 'Expired', `too old resource version: ${asked} (${oldest})`);
  },
  continueTooOld(): Status {
    return failure(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.');
  },
  resourceVersionTooLarge(asked: number, current: number): Status {
    return failure(504, 'Timeout', `Too large resource version: ${asked}, current: ${current}`, {
      causes: [{ reason: 'ResourceVersionTooLarge', message: `Too large resource version`, field: '' }],
      retryAfterSeconds: 1,
    });
  },
  internalError(message: string): Status {
    return failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ reason: '', message, field: '' }] });
  },
  tooManyRequests(retryAfterSeconds: number): Status {
    return failure(429, 'TooManyRequests', 'The server has received too many requests and has asked us to try again later', {
      retryAfterSeconds,
    });
  },
  serviceUnavailable(message: string): Status {
    return failure(503, 'ServiceUnavailable', message);
  },
};

/** A Status of success, as DELETE returns for resources that do not return the object. */
export function successStatus(r: ResourceRef, name: string, uid: string): Record<string, unknown> {
  const details: StatusDetails = { name, ...(r.group !== '' ? { group: r.group } : {}), kind: r.plural, uid };
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
}

// --- field errors (k8s.io/apimachinery/pkg/util/validation/field) ----------------------------

/** How Go's %v / %q prints a value inside a field error message. */
export function goValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export const FieldErrors = {
  invalid(field: string, value: unknown, detail: string): StatusCause {
    return { reason: 'FieldValueInvalid', message: `Invalid value: ${goValue(value)}: ${detail}`, field };
  },
  required(field: string, detail?: string): StatusCause {
    return { reason: 'FieldValueRequired', message: detail ? `Required value: ${detail}` : 'Required value', field };
  },
  notSupported(field: string, value: unknown, allowed: unknown[]): StatusCause {
    return { reason: 'FieldValueNotSupported', message: `Unsupported value: ${goValue(value)}: supported values: ${allowed.map(goValue).join(', ')}`, field };
  },
  typeInvalid(field: string, value: unknown, detail: string): StatusCause {
    return { reason: 'FieldValueTypeInvalid', message: `Invalid value: ${goValue(value)}: ${detail}`, field };
  },
  forbidden(field: string, detail: string): StatusCause {
    return { reason: 'FieldValueForbidden', message: `Forbidden: ${detail}`, field };
  },
  tooLong(field: string, max: number): StatusCause {
    return { reason: 'FieldValueTooLong', message: `Too long: may not be more than ${max} bytes`, field };
  },
  tooMany(field: string, actual: number, max: number): StatusCause {
    return { reason: 'FieldValueTooMany', message: `Too many: ${actual}: must have at most ${max} items`, field };
  },
  duplicate(field: string, value: unknown): StatusCause {
    return { reason: 'FieldValueDuplicate', message: `Duplicate value: ${goValue(value)}`, field };
  },
};
