// Name rules of k8s.io/apimachinery/pkg/util/validation, with the real messages (see 08).
import { FieldErrors, type StatusCause } from './status';
import type { ResourceType } from './resource-types';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

const MSG_1123_LABEL = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const MSG_1123_SUBDOMAIN = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const MSG_1035_LABEL = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/** Causes for metadata.name (or another name-like field), empty when valid. */
export function nameProblems(rule: ResourceType['nameRule'], name: string, field = 'metadata.name'): StatusCause[] {
  const out: StatusCause[] = [];
  switch (rule) {
    case 'dns1123-label':
      if (name.length > 63) out.push(FieldErrors.invalid(field, name, 'must be no more than 63 characters'));
      if (!DNS1123_LABEL.test(name)) out.push(FieldErrors.invalid(field, name, MSG_1123_LABEL));
      break;
    case 'dns1035-label':
      if (name.length > 63) out.push(FieldErrors.invalid(field, name, 'must be no more than 63 characters'));
      if (!DNS1035_LABEL.test(name)) out.push(FieldErrors.invalid(field, name, MSG_1035_LABEL));
      break;
    case 'dns1123-subdomain':
      if (name.length > 253) out.push(FieldErrors.invalid(field, name, 'must be no more than 253 characters'));
      if (!DNS1123_SUBDOMAIN.test(name)) out.push(FieldErrors.invalid(field, name, MSG_1123_SUBDOMAIN));
      break;
    case 'path-segment':
      if (name === '.' || name === '..') out.push(FieldErrors.invalid(field, name, `may not be '${name}'`));
      else if (name.includes('/') || name.includes('%')) out.push(FieldErrors.invalid(field, name, `may not contain '${name.includes('/') ? '/' : '%'}'`));
      break;
  }
  return out;
}

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** metadata.labels keys and values (qualified names, values up to 63 characters). */
export function labelProblems(labels: unknown): StatusCause[] {
  if (labels === undefined || labels === null) return [];
  const out: StatusCause[] = [];
  for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
    const slash = k.lastIndexOf('/');
    const prefix = slash >= 0 ? k.slice(0, slash) : '';
    const local = slash >= 0 ? k.slice(slash + 1) : k;
    if ((slash >= 0 && !DNS1123_SUBDOMAIN.test(prefix)) || local.length > 63 || !QUALIFIED_NAME.test(local)) {
      out.push(FieldErrors.invalid('metadata.labels', k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
    }
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) {
      out.push(FieldErrors.invalid('metadata.labels', v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
    }
  }
  return out;
}
