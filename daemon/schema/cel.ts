// A deliberately small CEL (Common Expression Language) evaluator for the
// `x-kubernetes-validations` rules of the CRDs in installer/crds. Not a CEL implementation:
// it covers exactly the subset those rules use, and refuses anything else at compile time,
// so a CRD author who writes a rule beyond it gets an error at load, never a rule that is
// silently skipped. Supported:
//   literals: 'str', "str", integers, true, false, null
//   self, self.field, (expr), !expr, a && b, a || b, a ? b : c
//   ==, !=, <, <=, >, >=, + (int and string)
//   has(self.x.y), size(x), int(x), isIP(s), isCIDR(s)
//   s.contains(t), s.startsWith(t), s.endsWith(t), s.matches(re)
//   list/map .all(v, expr) and .exists(v, expr) (a map iterates over its keys)
// Errors inside evaluation (no such field, wrong type) make the rule fail, as CEL's runtime
// errors fail a validation on a real API server.
import { isIP } from 'node:net';

type Value = unknown;
type Env = ReadonlyMap<string, Value>;
type Node = (env: Env) => Value;

export class CelError extends Error {}

class Lexer {
  readonly tokens: string[] = [];
  constructor(src: string) {
    const re = /\s*(?:(\d+)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_]*)|(&&|\|\||==|!=|<=|>=|[!<>().,?:+]))/y;
    let i = 0;
    while (i < src.length) {
      if (/^\s*$/.test(src.slice(i))) break;
      re.lastIndex = i;
      const m = re.exec(src);
      if (!m) throw new CelError(`unsupported syntax at ${JSON.stringify(src.slice(i, i + 10))}`);
      this.tokens.push(m[1] ?? m[2] ?? m[3] ?? m[4]!);
      i = re.lastIndex;
    }
  }
}

const unquote = (t: string): string => JSON.parse(t.startsWith("'") ? `"${t.slice(1, -1).replace(/\\'/g, "'").replace(/"/g, '\\"')}"` : t) as string;

function truthy(v: Value): boolean {
  if (typeof v !== 'boolean') throw new CelError('expected a bool');
  return v;
}

function str(v: Value): string {
  if (typeof v !== 'string') throw new CelError('expected a string');
  return v;
}

function isCidr(s: string): boolean {
  const [addr, len, extra] = s.split('/');
  if (extra !== undefined || len === undefined || !/^\d{1,3}$/.test(len)) return false;
  const fam = isIP(addr ?? '');
  return fam !== 0 && Number(len) <= (fam === 6 ? 128 : 32);
}

function iterate(target: Value): Value[] {
  if (Array.isArray(target)) return target;
  if (target && typeof target === 'object') return Object.keys(target);
  throw new CelError('all/exists need a list or a map');
}

class Parser {
  private i = 0;
  constructor(private readonly t: string[]) {}

  parse(): Node {
    const n = this.ternary();
    if (this.i < this.t.length) throw new CelError(`unexpected ${this.t[this.i]}`);
    return n;
  }
  private peek(): string | undefined { return this.t[this.i]; }
  private take(expected?: string): string {
    const tok = this.t[this.i++];
    if (tok === undefined || (expected !== undefined && tok !== expected)) throw new CelError(`expected ${expected ?? 'more'}, got ${tok ?? 'end'}`);
    return tok;
  }
  private ternary(): Node {
    const c = this.or();
    if (this.peek() !== '?') return c;
    this.take('?');
    const a = this.ternary();
    this.take(':');
    const b = this.ternary();
    return (env) => (truthy(c(env)) ? a(env) : b(env));
  }
  private or(): Node {
    let l = this.and();
    while (this.peek() === '||') {
      this.take();
      const a = l; const b = this.and();
      l = (env) => truthy(a(env)) || truthy(b(env));
    }
    return l;
  }
  private and(): Node {
    let l = this.cmp();
    while (this.peek() === '&&') {
      this.take();
      const a = l; const b = this.cmp();
      l = (env) => truthy(a(env)) && truthy(b(env));
    }
    return l;
  }
  private cmp(): Node {
    const l = this.add();
    const op = this.peek();
    if (!op || !['==', '!=', '<', '<=', '>', '>='].includes(op)) return l;
    this.take();
    const r = this.add();
    return (env) => {
      const a = l(env); const b = r(env);
      if (op === '==') return a === b;
      if (op === '!=') return a !== b;
      if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) throw new CelError('ordering needs two ints or two strings');
      const x = a as number; const y = b as number;
      return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
    };
  }
  private add(): Node {
    let l = this.unary();
    while (this.peek() === '+') {
      this.take();
      const a = l; const b = this.unary();
      l = (env) => {
        const x = a(env); const y = b(env);
        if (typeof x !== typeof y || (typeof x !== 'number' && typeof x !== 'string')) throw new CelError('+ needs two ints or two strings');
        return (x as number) + (y as number);
      };
    }
    return l;
  }
  private unary(): Node {
    if (this.peek() === '!') {
      this.take();
      const n = this.unary();
      return (env) => !truthy(n(env));
    }
    return this.postfix();
  }
  private postfix(): Node {
    let n = this.primary();
    while (this.peek() === '.') {
      this.take();
      const name = this.take();
      if (this.peek() === '(') {
        n = this.method(n, name);
      } else {
        const obj = n;
        n = (env) => {
          const o = obj(env);
          if (!o || typeof o !== 'object' || !(name in (o as object))) throw new CelError(`no such key: ${name}`);
          return (o as Record<string, Value>)[name];
        };
      }
    }
    return n;
  }
  private method(target: Node, name: string): Node {
    this.take('(');
    if (name === 'all' || name === 'exists') {
      const v = this.take();
      this.take(',');
      const body = this.ternary();
      this.take(')');
      return (env) => {
        const items = iterate(target(env));
        const test = (x: Value): boolean => truthy(body(new Map([...env, [v, x]])));
        return name === 'all' ? items.every(test) : items.some(test);
      };
    }
    const arg = this.ternary();
    this.take(')');
    const fns: Record<string, (s: string, a: string) => boolean> = {
      contains: (s, a) => s.includes(a),
      startsWith: (s, a) => s.startsWith(a),
      endsWith: (s, a) => s.endsWith(a),
      matches: (s, a) => new RegExp(a, 'u').test(s),
    };
    const fn = fns[name];
    if (!fn) throw new CelError(`unsupported method ${name}()`);
    return (env) => fn(str(target(env)), str(arg(env)));
  }
  private primary(): Node {
    const tok = this.take();
    if (tok === '(') {
      const n = this.ternary();
      this.take(')');
      return n;
    }
    if (/^\d+$/.test(tok)) { const v = Number(tok); return () => v; }
    if (tok.startsWith('"') || tok.startsWith("'")) { const v = unquote(tok); return () => v; }
    if (tok === 'true' || tok === 'false') { const v = tok === 'true'; return () => v; }
    if (tok === 'null') return () => null;
    if (this.peek() === '(') return this.call(tok);
    if (!/^[A-Za-z_]/.test(tok)) throw new CelError(`unexpected ${tok}`);
    return (env) => {
      if (!env.has(tok)) throw new CelError(`undeclared reference to ${tok}`);
      return env.get(tok);
    };
  }
  private call(name: string): Node {
    this.take('(');
    if (name === 'has') {
      // has(a.b.c): a.b must exist, c is tested.
      const start = this.i;
      const path: string[] = [this.take()];
      while (this.peek() === '.') { this.take(); path.push(this.take()); }
      this.take(')');
      if (path.length < 2 || path.some((p) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(p))) throw new CelError(`has() needs a field selection, at token ${start}`);
      return (env) => {
        let o: Value = env.get(path[0]!);
        for (const p of path.slice(1, -1)) {
          if (!o || typeof o !== 'object' || !(p in (o as object))) throw new CelError(`no such key: ${p}`);
          o = (o as Record<string, Value>)[p];
        }
        return !!o && typeof o === 'object' && (o as Record<string, Value>)[path[path.length - 1]!] !== undefined;
      };
    }
    const arg = this.ternary();
    this.take(')');
    switch (name) {
      case 'size': return (env) => {
        const v = arg(env);
        if (typeof v === 'string') return [...v].length;
        if (Array.isArray(v)) return v.length;
        if (v && typeof v === 'object') return Object.keys(v).length;
        throw new CelError('size() needs a string, list or map');
      };
      case 'int': return (env) => {
        const v = arg(env);
        if (typeof v === 'number' && Number.isInteger(v)) return v;
        if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
        throw new CelError('int() needs an integer or a decimal string');
      };
      case 'isIP': return (env) => isIP(str(arg(env))) !== 0;
      case 'isCIDR': return (env) => isCidr(str(arg(env)));
      default: throw new CelError(`unsupported function ${name}()`);
    }
  }
}

export type CompiledRule = (self: unknown) => boolean;

/** Compiles a rule once; throws CelError for anything outside the supported subset. */
export function compileRule(rule: string): CompiledRule {
  const node = new Parser(new Lexer(rule).tokens).parse();
  return (self) => {
    try {
      return truthy(node(new Map([['self', self]])));
    } catch (e) {
      if (e instanceof CelError) return false;
      throw e;
    }
  };
}
