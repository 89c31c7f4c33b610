/** Sums every sample of `name` in a Prometheus text exposition (all label sets), optionally filtered by a label. */
export function sumSamples(text: string, name: string, label?: { key: string; value: string }): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue; // another metric sharing the prefix
    if (label && !rest.includes(`${label.key}="${label.value}"`)) continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

/** GETs a /metrics page; resolves to '' when the service does not answer (yet). */
export async function scrape(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? await res.text() : '';
  } catch {
    return '';
  }
}
