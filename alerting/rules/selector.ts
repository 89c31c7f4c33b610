/**
 * Which devices a rule watches: device id globs (`*` any run, `?` one character) and exact tag values.
 * Device id matches are cached per rule, since a fleet re-sends the same ids all day.
 */
export interface SelectorSpec {
  devices: string[];
  tags?: Record<string, string> | undefined;
}

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export class Selector {
  readonly #patterns: RegExp[];
  readonly #tags: [string, string][];
  readonly #cache = new Map<string, boolean>();

  constructor(spec: SelectorSpec) {
    this.#patterns = spec.devices.map(globToRegExp);
    this.#tags = Object.entries(spec.tags ?? {});
  }

  get hasTags(): boolean {
    return this.#tags.length > 0;
  }

  matchesDevice(deviceId: string): boolean {
    let hit = this.#cache.get(deviceId);
    if (hit === undefined) {
      hit = this.#patterns.some((p) => p.test(deviceId));
      if (this.#cache.size > 100_000) this.#cache.clear(); // bounded: a fleet larger than this just re-tests
      this.#cache.set(deviceId, hit);
    }
    return hit;
  }

  matchesTags(tags: Record<string, string> | undefined): boolean {
    for (const [k, v] of this.#tags) if (tags?.[k] !== v) return false;
    return true;
  }

  matches(deviceId: string, tags: Record<string, string> | undefined): boolean {
    return this.matchesDevice(deviceId) && this.matchesTags(tags);
  }
}
