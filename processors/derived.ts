/**
 * Derived metrics from declared formulas (issue 4), e.g. dew point from temperature and humidity, or a unit
 * conversion. A formula is a small arithmetic language parsed once at start-up into a closure tree; nothing
 * is ever `eval`ed. Grammar:
 *
 *   expr    = term (("+" | "-") term)*
 *   term    = unary (("*" | "/") unary)*
 *   unary   = "-" unary | power
 *   power   = primary ("^" unary)?          (right-associative)
 *   primary = number | metric | func "(" expr ("," expr)* ")" | "(" expr ")"
 *
 * Metrics are referenced by name (letters, digits, `_`, `.`; a name that is not an identifier can be quoted
 * with backticks). Functions: ln, log10, exp, sqrt, abs, min, max, pow, round, floor, ceil.
 * A derived metric is computed only when every metric it references is present, and kept only when the
 * result is a finite number; a metric the device sent itself is never overwritten.
 */
import { z } from 'zod';
import { PipelineError } from '../core/errors.ts';
import { QUALITY_FIELD } from '../core/schemas.ts';

type Fn = (vars: Record<string, number>) => number;

const FUNCTIONS: Record<string, { arity: [number, number]; fn: (...a: number[]) => number }> = {
  ln: { arity: [1, 1], fn: Math.log },
  log10: { arity: [1, 1], fn: Math.log10 },
  exp: { arity: [1, 1], fn: Math.exp },
  sqrt: { arity: [1, 1], fn: Math.sqrt },
  abs: { arity: [1, 1], fn: Math.abs },
  round: { arity: [1, 1], fn: Math.round },
  floor: { arity: [1, 1], fn: Math.floor },
  ceil: { arity: [1, 1], fn: Math.ceil },
  pow: { arity: [2, 2], fn: Math.pow },
  min: { arity: [1, 16], fn: Math.min },
  max: { arity: [1, 16], fn: Math.max },
};

type Token = { kind: 'num'; value: number; at: number } | { kind: 'id'; value: string; at: number } | { kind: 'op'; value: string; at: number };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ kind: 'num', value: Number(num[0]), at: i });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(src.slice(i));
    if (id) {
      out.push({ kind: 'id', value: id[0], at: i });
      i += id[0].length;
      continue;
    }
    if (c === '`') {
      const close = src.indexOf('`', i + 1);
      if (close < 0) throw new Error(`unterminated \` at ${i}`);
      out.push({ kind: 'id', value: src.slice(i + 1, close), at: i });
      i = close + 1;
      continue;
    }
    if ('+-*/^(),'.includes(c)) {
      out.push({ kind: 'op', value: c, at: i });
      i++;
      continue;
    }
    throw new Error(`unexpected character ${JSON.stringify(c)} at ${i}`);
  }
  return out;
}

export interface CompiledFormula {
  readonly inputs: ReadonlySet<string>;
  evaluate(vars: Record<string, number>): number;
}

/** Parses a formula; throws an Error naming the position of the first problem. */
export function compileFormula(src: string): CompiledFormula {
  const tokens = tokenize(src);
  const inputs = new Set<string>();
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isOp = (v: string): boolean => {
    const t = peek();
    return t?.kind === 'op' && t.value === v;
  };
  const expect = (v: string): void => {
    if (!isOp(v)) throw new Error(`expected ${JSON.stringify(v)} at ${peek()?.at ?? src.length}`);
    pos++;
  };

  const expr = (): Fn => {
    let left = term();
    while (isOp('+') || isOp('-')) {
      const op = (tokens[pos++] as Token).value;
      const l = left;
      const r = term();
      left = op === '+' ? (x) => l(x) + r(x) : (x) => l(x) - r(x);
    }
    return left;
  };
  const term = (): Fn => {
    let left = unary();
    while (isOp('*') || isOp('/')) {
      const op = (tokens[pos++] as Token).value;
      const l = left;
      const r = unary();
      left = op === '*' ? (x) => l(x) * r(x) : (x) => l(x) / r(x);
    }
    return left;
  };
  const unary = (): Fn => {
    if (isOp('-')) {
      pos++;
      const inner = unary();
      return (x) => -inner(x);
    }
    return power();
  };
  const power = (): Fn => {
    const base = primary();
    if (isOp('^')) {
      pos++;
      const exp = unary();
      return (x) => base(x) ** exp(x);
    }
    return base;
  };
  const primary = (): Fn => {
    const t = peek();
    if (!t) throw new Error('unexpected end of formula');
    if (t.kind === 'num') {
      pos++;
      const v = t.value;
      return () => v;
    }
    if (t.kind === 'id') {
      pos++;
      if (isOp('(')) {
        const f = FUNCTIONS[t.value];
        if (!f) throw new Error(`unknown function ${JSON.stringify(t.value)} at ${t.at} (known: ${Object.keys(FUNCTIONS).join(', ')})`);
        pos++;
        const args: Fn[] = [expr()];
        while (isOp(',')) {
          pos++;
          args.push(expr());
        }
        expect(')');
        const [lo, hi] = f.arity;
        if (args.length < lo || args.length > hi)
          throw new Error(`${t.value}() takes ${lo === hi ? lo : `${lo} to ${hi}`} argument(s), got ${args.length} at ${t.at}`);
        const fn = f.fn;
        if (args.length === 1) {
          const a = args[0]!;
          return (x) => fn(a(x));
        }
        return (x) => fn(...args.map((a) => a(x)));
      }
      const name = t.value;
      inputs.add(name);
      return (x) => x[name]!;
    }
    if (t.value === '(') {
      pos++;
      const inner = expr();
      expect(')');
      return inner;
    }
    throw new Error(`unexpected ${JSON.stringify(t.value)} at ${t.at}`);
  };

  const root = expr();
  if (pos < tokens.length) throw new Error(`unexpected ${JSON.stringify(tokens[pos]!.value)} at ${tokens[pos]!.at}`);
  return { inputs, evaluate: root };
}

const MetricName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]{0,63}$/, 'must be a metric name (letters, digits, _ and .)');

export const DerivedMetricSpec = z.object({ name: MetricName, formula: z.string().min(1) });
export type DerivedMetricSpec = z.infer<typeof DerivedMetricSpec>;

export interface DerivedMetric {
  readonly name: string;
  readonly formula: CompiledFormula;
}

/**
 * Validates and compiles the declared formulas (config `DERIVED_METRICS`, a JSON array of {name, formula}).
 * A formula may use metrics derived before it in the list.
 * @throws PipelineError IOT_BAD_CONFIG naming the formula and the problem.
 */
export function compileDerivedMetrics(specs: readonly DerivedMetricSpec[]): DerivedMetric[] {
  const seen = new Set<string>();
  return specs.map((s, i) => {
    if (seen.has(s.name)) throw new PipelineError('IOT_BAD_CONFIG', `DERIVED_METRICS[${i}]: ${s.name} is declared twice`);
    if (s.name === QUALITY_FIELD) throw new PipelineError('IOT_BAD_CONFIG', `DERIVED_METRICS[${i}]: ${s.name} is reserved for the reading's quality flag`);
    let formula: CompiledFormula;
    try {
      formula = compileFormula(s.formula);
    } catch (err) {
      throw new PipelineError('IOT_BAD_CONFIG', `DERIVED_METRICS[${i}] (${s.name}): ${(err as Error).message}`, { cause: err });
    }
    if (formula.inputs.has(s.name)) throw new PipelineError('IOT_BAD_CONFIG', `DERIVED_METRICS[${i}] (${s.name}): a formula cannot use its own result`);
    seen.add(s.name);
    return { name: s.name, formula };
  });
}

/**
 * Adds the derived metrics to `metrics` (in place) where all inputs are present and the result is finite.
 * Returns how many formulas were skipped for a non-finite result (e.g. ln of a negative humidity).
 */
export function applyDerived(derived: readonly DerivedMetric[], metrics: Record<string, number>): number {
  let nonFinite = 0;
  outer: for (const d of derived) {
    if (d.name in metrics) continue;
    for (const input of d.formula.inputs) if (!(input in metrics)) continue outer;
    const v = d.formula.evaluate(metrics);
    if (Number.isFinite(v)) metrics[d.name] = v;
    else nonFinite++;
  }
  return nonFinite;
}
