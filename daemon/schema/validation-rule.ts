// One `x-kubernetes-validations` rule of a CRD, evaluated by a real CEL implementation
// (@bufbuild/cel) in the Kubernetes CEL environment (./kubernetes-cel-library.ts).
// A rule is parsed and planned once, when its CRD loads; a rule that does not parse, or that
// names a function or variable the environment does not have, is refused there (an API
// server refuses such a CRD too), never skipped. At run time a CEL error (no such field, no
// matching overload) or a result that is not true fails the rule, as on an API server.
import { celEnv, isCelError, parse, plan, CelScalar, type CelInput } from '@bufbuild/cel';
import { kubernetesCelFunctions } from './kubernetes-cel-library';

export class ValidationRuleError extends Error {}

/** The parts of a structural schema that decide how JSON becomes CEL values. */
export interface StructuralSchema {
  type?: string | string[];
  properties?: Record<string, StructuralSchema>;
  additionalProperties?: StructuralSchema | boolean;
  items?: StructuralSchema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
}

type Expr = ReturnType<typeof parse>['expr'];

const env = celEnv({ variables: { self: CelScalar.DYN }, funcs: [...kubernetesCelFunctions] });

// Calls the planner evaluates itself (macros, operators it short-circuits), not in env.funcs.
const PLANNER_CALLS = new Set(['_[_]', '_[?_]', '_?._', '_?_:_', '_&&_', '_||_', '@not_strictly_false', '__not_strictly_false__']);

/** What the environment cannot resolve: each an unknown function or variable, by name. */
function unresolvedNames(e: Expr | undefined, scope: ReadonlySet<string>, out: Set<string>): Set<string> {
  if (!e) return out;
  const k = e.exprKind;
  switch (k.case) {
    case 'identExpr':
      if (!scope.has(k.value.name)) out.add(k.value.name === 'oldSelf' ? 'oldSelf (transition rules need the previous object, which this validator never has)' : `variable ${k.value.name}`);
      break;
    case 'selectExpr':
      unresolvedNames(k.value.operand, scope, out);
      break;
    case 'callExpr': {
      const { target, args } = k.value;
      const name = k.value.function;
      const qualified = target?.exprKind.case === 'identExpr' ? `${target.exprKind.value.name}.${name}` : undefined;
      if (qualified !== undefined && env.funcs.find(qualified)) break;
      if (!PLANNER_CALLS.has(name) && !env.funcs.find(name)) out.add(`function ${name}()`);
      unresolvedNames(target, scope, out);
      for (const a of args) unresolvedNames(a, scope, out);
      break;
    }
    case 'listExpr':
      for (const x of k.value.elements) unresolvedNames(x, scope, out);
      break;
    case 'structExpr':
      if (k.value.messageName) out.add(`message type ${k.value.messageName}`);
      for (const entry of k.value.entries) {
        if (entry.keyKind.case === 'mapKey') unresolvedNames(entry.keyKind.value, scope, out);
        unresolvedNames(entry.value, scope, out);
      }
      break;
    case 'comprehensionExpr': {
      const c = k.value;
      unresolvedNames(c.iterRange, scope, out);
      unresolvedNames(c.accuInit, scope, out);
      const inner = new Set([...scope, c.iterVar, c.iterVar2, c.accuVar].filter((v) => v !== ''));
      for (const x of [c.loopCondition, c.loopStep, c.result]) unresolvedNames(x, inner, out);
      break;
    }
    default:
      break;
  }
  return out;
}

/** A plan for one CEL expression over `self`; throws ValidationRuleError if it cannot run. */
function planExpression(expression: string): (self: CelInput) => unknown {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(expression);
  } catch (e) {
    throw new ValidationRuleError(`rule ${JSON.stringify(expression)} does not compile: ${(e as Error).message}`);
  }
  const unknown = unresolvedNames(parsed.expr, new Set(['self']), new Set());
  if (unknown.size > 0) throw new ValidationRuleError(`rule ${JSON.stringify(expression)} does not compile: undeclared reference to ${[...unknown].join(', ')}`);
  const run = plan(env, parsed);
  return (self) => run({ self });
}

/** JSON as the API server gives it to CEL: per the schema, an integer field is a CEL int
 * (bigint here), a number field a double; objects are maps; absent fields stay absent. */
export function toCelValue(value: unknown, schema: StructuralSchema | undefined): CelInput {
  if (typeof value === 'number') {
    const types = schema?.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
    return Number.isInteger(value) && !(types.includes('number') && !types.includes('integer')) ? BigInt(value) : value;
  }
  if (Array.isArray(value)) return value.map((v) => toCelValue(v, schema?.items));
  if (value !== null && typeof value === 'object') {
    const extra = typeof schema?.additionalProperties === 'object' ? schema.additionalProperties : undefined;
    const out = new Map<string, CelInput>();
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out.set(k, toCelValue(v, schema?.properties?.[k] ?? extra));
    }
    return out;
  }
  return value as CelInput;
}

/** Whether JSON at this place can hold a number; if not, CEL can read it as it is (plain
 * objects are maps to @bufbuild/cel), and the copy toCelValue makes is not needed. */
function mayHoldNumbers(schema: StructuralSchema | undefined): boolean {
  if (!schema || schema['x-kubernetes-preserve-unknown-fields'] || schema['x-kubernetes-int-or-string']) return true;
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.length === 0 || types.includes('integer') || types.includes('number')) return true;
  // An object or a list whose contents the schema leaves open can hold anything.
  if (types.includes('object') && !schema.properties && schema.additionalProperties === undefined) return true;
  if (types.includes('array') && !schema.items) return true;
  if (schema.additionalProperties === true) return true;
  const children = [...Object.values(schema.properties ?? {}), schema.items, typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined];
  return children.some((c) => c !== undefined && mayHoldNumbers(c));
}

export interface CompiledRule {
  /** Whether `self` (the JSON at the rule's place in the object) satisfies the rule. */
  test(self: unknown): boolean;
  /** The message for a failure: messageExpression's result if it gives a non-empty string. */
  message(self: unknown): string;
}

/** Compiles a rule and its messages once, for objects at a place described by `schema`. */
export function compileRule(
  source: { rule: string; message?: string; messageExpression?: string },
  schema?: StructuralSchema,
): CompiledRule {
  const rule = planExpression(source.rule);
  const messageExpression = source.messageExpression === undefined ? undefined : planExpression(source.messageExpression);
  const fixed = source.message ?? `failed rule: ${source.rule}`;
  const input = mayHoldNumbers(schema) ? (self: unknown) => toCelValue(self, schema) : (self: unknown) => self as CelInput;
  return {
    test(self) {
      const r = rule(input(self));
      return !isCelError(r) && r === true;
    },
    message(self) {
      if (!messageExpression) return fixed;
      const m = messageExpression(input(self));
      return typeof m === 'string' && m.trim() !== '' ? m : fixed;
    },
  };
}
