/**
 * Summarises V8 `.cpuprofile` files (from `node --cpu-prof`, e.g. `npm run loadtest -- --profile <dir>`):
 * self time per function and per package, as a share of all samples, so "where does the CPU go" has an answer.
 * Usage: tsx bench/cpu-profile.ts <file.cpuprofile>... [--top 25]
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { z } from 'zod';

const Profile = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
    }),
  ),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});

/** `node_modules/<pkg>` (scoped too), `node:` internals, or the project file. */
function owner(url: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') return '(native / GC / idle)';
  const p = /\/(core|gateway|processors|alerting|simulator|devstack)\/[^/]+$/.exec(url);
  return p ? p[0].slice(1) : basename(url);
}

const args = process.argv.slice(2);
const topIdx = args.indexOf('--top');
const top = topIdx >= 0 ? Number(args[topIdx + 1]) : 25;
const files = args.filter((a, i) => !a.startsWith('--') && (topIdx < 0 || i !== topIdx + 1));
for (const file of files) {
  const prof = Profile.parse(JSON.parse(await readFile(file, 'utf8')));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  let total = 0;
  let idle = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    total += dt;
    if (functionName === '(idle)') {
      idle += dt;
      return;
    }
    const key = `${functionName || '(anonymous)'}  ${owner(url)}${url ? `:${lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + dt);
    const o = ['(garbage collector)', '(program)'].includes(functionName) ? functionName : owner(url);
    pkg.set(o, (pkg.get(o) ?? 0) + dt);
  });
  const busy = total - idle;
  const pct = (v: number): string => `${((v / busy) * 100).toFixed(1).padStart(5)}%`;
  console.log(`\n${file}: ${(total / 1e6).toFixed(1)} s sampled, ${((busy / total) * 100).toFixed(0)}% busy; shares below are of busy time`);
  console.log('  by package / file:');
  for (const [k, v] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`    ${pct(v)}  ${k}`);
  console.log(`  top ${top} functions (self time):`);
  for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(v)}  ${k}`);
}
