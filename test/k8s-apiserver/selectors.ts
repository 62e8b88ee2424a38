// labelSelector and fieldSelector query parameters: parsed once per request into predicates.
// Grammar of k8s.io/apimachinery/pkg/labels (=, ==, !=, in, notin, exists, !exists, gt, lt)
// and pkg/fields (=, ==, != on a per-kind set of fields).

export type Requirement =
  | { key: string; op: 'exists' | '!exists' }
  | { key: string; op: '=' | '!=' | 'in' | 'notin'; values: string[] }
  | { key: string; op: 'gt' | 'lt'; values: [string] };

export class SelectorError extends Error {}

const KEY_CHARS = /[A-Za-z0-9_.\-/]/;

/** Parses a label selector; throws SelectorError with the reason when it does not parse. */
export function parseLabelSelector(text: string): Requirement[] {
  const reqs: Requirement[] = [];
  let i = 0;
  const s = text;
  const skipSpace = () => { while (i < s.length && s[i] === ' ') i++; };
  const readWord = () => {
    const start = i;
    while (i < s.length && KEY_CHARS.test(s[i])) i++;
    return s.slice(start, i);
  };
  while (i < s.length) {
    skipSpace();
    if (i >= s.length) break;
    let negate = false;
    if (s[i] === '!') { negate = true; i++; skipSpace(); }
    const key = readWord();
    if (key === '') throw new SelectorError(`unable to parse requirement: found '${s[i] ?? ''}', expected: identifier`);
    skipSpace();
    if (negate) {
      reqs.push({ key, op: '!exists' });
    } else if (i >= s.length || s[i] === ',') {
      reqs.push({ key, op: 'exists' });
    } else if (s.startsWith('!=', i) || s.startsWith('==', i) || s[i] === '=') {
      const op = s.startsWith('!=', i) ? '!=' : '=';
      i += s.startsWith('==', i) || op === '!=' ? 2 : 1;
      skipSpace();
      reqs.push({ key, op, values: [readWord()] });
    } else if (s[i] === '>' || s[i] === '<') {
      const op = s[i] === '>' ? 'gt' : 'lt';
      i++;
      skipSpace();
      const v = readWord();
      if (!/^-?\d+$/.test(v)) throw new SelectorError(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer`);
      reqs.push({ key, op, values: [v] });
    } else {
      const word = readWord();
      if (word !== 'in' && word !== 'notin') throw new SelectorError(`unable to parse requirement: found '${word || s[i]}', expected: in, notin, =, ==, !=, gt, lt`);
      skipSpace();
      if (s[i] !== '(') throw new SelectorError(`unable to parse requirement: found '${s[i] ?? ''}', expected: '('`);
      i++;
      const values: string[] = [];
      for (;;) {
        skipSpace();
        values.push(readWord());
        skipSpace();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === ')') { i++; break; }
        throw new SelectorError(`unable to parse requirement: found '${s[i] ?? ''}', expected: ',', ')'`);
      }
      reqs.push({ key, op: word, values });
    }
    skipSpace();
    if (i < s.length) {
      if (s[i] !== ',') throw new SelectorError(`unable to parse requirement: found '${s[i]}', expected: ','`);
      i++;
    }
  }
  return reqs;
}

export function labelsMatch(reqs: Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.op) {
      case 'exists': return has;
      case '!exists': return !has;
      case '=': return has && l[r.key] === r.values[0];
      case '!=': return !has || l[r.key] !== r.values[0];
      case 'in': return has && r.values.includes(l[r.key]);
      case 'notin': return !has || !r.values.includes(l[r.key]);
      case 'gt': return has && /^-?\d+$/.test(l[r.key]) && Number(l[r.key]) > Number(r.values[0]);
      case 'lt': return has && /^-?\d+$/.test(l[r.key]) && Number(l[r.key]) < Number(r.values[0]);
    }
    return false;
  });
}

export interface FieldRequirement { field: string; op: '=' | '!='; value: string }

/** Parses a field selector, refusing fields the kind does not index as the real server does. */
export function parseFieldSelector(text: string, selectable: string[]): FieldRequirement[] {
  const out: FieldRequirement[] = [];
  for (const term of text.split(',')) {
    if (term.trim() === '') continue;
    const m = /^([^!=]+)(==|!=|=)(.*)$/.exec(term);
    if (!m) throw new SelectorError(`invalid selector: '${text}'; can't understand '${term}'`);
    const field = m[1].trim();
    if (field !== 'metadata.name' && field !== 'metadata.namespace' && !selectable.includes(field)) {
      throw new SelectorError(`field label not supported: ${field}`);
    }
    out.push({ field, op: m[2] === '!=' ? '!=' : '=', value: m[3] });
  }
  return out;
}

export function fieldValue(obj: Record<string, any>, field: string): string {
  let cur: any = obj;
  for (const part of field.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = cur[part];
  }
  if (cur === undefined || cur === null) return '';
  return String(cur);
}

export function fieldsMatch(reqs: FieldRequirement[], obj: Record<string, any>): boolean {
  return reqs.every((r) => (fieldValue(obj, r.field) === r.value) === (r.op === '='));
}
