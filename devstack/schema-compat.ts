/**
 * Is a new JSON Schema backward compatible with a released one of the same major (docs/design.md, "Schema
 * evolution")? Both directions must keep working during a rolling upgrade and a replay: new consumers read old
 * events, old consumers read new events. So, within a major, the only change allowed is a new optional property;
 * everything a released version said stays as it was:
 * - a released property may not be removed (old consumers need it) nor change anything (type, const, enum,
 *   bounds, pattern, items...): a wider type breaks old consumers, a narrower one breaks new consumers on old events;
 * - the `required` list stays the same set: a new required field is missing from old events, and a required field
 *   made optional may be missing for old consumers;
 * - a new property must be optional;
 * - descriptions, titles, `$id` and `x-` annotations may change.
 * An enum that gains a value is a change too: an old consumer refuses the new value.
 */
import type { JsonSchema } from './wire-schemas.ts';

const ANNOTATIONS = new Set(['description', 'title', '$id', '$schema', 'examples']);

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function compare(released: unknown, current: unknown, path: string, problems: string[]): void {
  if (Array.isArray(released) || Array.isArray(current)) {
    if (!Array.isArray(released) || !Array.isArray(current) || released.length !== current.length) {
      problems.push(`${path}: changed from ${JSON.stringify(released)} to ${JSON.stringify(current)}`);
      return;
    }
    released.forEach((r, i) => compare(r, current[i], `${path}[${i}]`, problems));
    return;
  }
  if (!isObj(released) || !isObj(current)) {
    if (released !== current) problems.push(`${path}: changed from ${JSON.stringify(released)} to ${JSON.stringify(current)}`);
    return;
  }
  const keys = new Set([...Object.keys(released), ...Object.keys(current)]);
  for (const k of keys) {
    if (ANNOTATIONS.has(k) || k.startsWith('x-')) continue;
    const at = path ? `${path}.${k}` : k;
    if (!(k in current)) {
      problems.push(`${at}: removed (was ${JSON.stringify(released[k])})`);
      continue;
    }
    if (!(k in released)) {
      if (k !== 'properties') problems.push(`${at}: added ${JSON.stringify(current[k])}`);
      continue;
    }
    if (k === 'properties' && isObj(released[k]) && isObj(current[k])) {
      const r = released[k];
      const c = current[k];
      for (const p of Object.keys(r)) {
        if (!(p in c)) problems.push(`${path ? `${path}.` : ''}${p}: field removed`);
        else compare(r[p], c[p], path ? `${path}.${p}` : p, problems);
      }
      const required = new Set(Array.isArray(current.required) ? (current.required as string[]) : []);
      for (const p of Object.keys(c)) if (!(p in r) && required.has(p)) problems.push(`${path ? `${path}.` : ''}${p}: new field is required`);
      continue;
    }
    if (k === 'required' && Array.isArray(released[k]) && Array.isArray(current[k])) {
      const r = new Set(released[k] as string[]);
      const c = new Set(current[k] as string[]);
      for (const p of r) if (!c.has(p)) problems.push(`${path ? `${path}.` : ''}${p}: no longer required`);
      // A newly required field that is also new is reported once, by `properties` above.
      const releasedProps = isObj(released.properties) ? released.properties : {};
      for (const p of c) if (!r.has(p) && p in releasedProps) problems.push(`${path ? `${path}.` : ''}${p}: now required`);
      continue;
    }
    compare(released[k], current[k], at, problems);
  }
}

/** The incompatibilities of `current` against `released` (empty when compatible), each naming the field. */
export function incompatibilities(released: JsonSchema, current: JsonSchema): string[] {
  const problems: string[] = [];
  compare(released, current, '', problems);
  return problems;
}

/** Equal but for annotations: what "this version is unchanged" means. */
export function sameSchema(a: JsonSchema, b: JsonSchema): boolean {
  const strip = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(strip)
      : isObj(x)
        ? Object.fromEntries(
            Object.entries(x)
              .filter(([k]) => !ANNOTATIONS.has(k) && !k.startsWith('x-'))
              .map(([k, v]) => [k, strip(v)]),
          )
        : x;
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
