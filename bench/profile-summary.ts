/**
 * Where the time went in a V8 CPU profile (node --cpu-prof): self time by function and by
 * package or source file. `tsx bench/profile-summary.ts file.cpuprofile [rows]`.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, rowsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [rows]');
const rows = Number(rowsArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfTime = new Map<number, number>();
profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfTime.values()].reduce((a, b) => a + b, 0);

/** node_modules/<pkg>, our own src/ file, node: internals, or the V8 bucket (GC, idle, program). */
function where(url: string, fn: string): string {
  if (!url) return `(${fn || 'native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/(dist|src)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url.startsWith('node:') ? url : url.replace(/^file:\/\//, '');
}

function top(key: (n: Node) => string) {
  const sums = new Map<string, number>();
  for (const [id, t] of selfTime) {
    const k = key(byId.get(id)!);
    sums.set(k, (sums.get(k) ?? 0) + t);
  }
  return [...sums.entries()].sort((a, b) => b[1] - a[1]).slice(0, rows);
}

/** Inclusive time (self + callees) per function, counted once per stack it appears in. */
function inclusive(filter: (n: Node) => boolean) {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const sums = new Map<string, number>();
  for (const [id, t] of selfTime) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at)!;
      if (!filter(n)) continue;
      const k = `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`;
      if (seen.has(k)) continue;
      seen.add(k);
      sums.set(k, (sums.get(k) ?? 0) + t);
    }
  }
  return [...sums.entries()].sort((a, b) => b[1] - a[1]).slice(0, rows);
}

const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
console.log(`total ${(total / 1e6).toFixed(1)} s sampled\n\nself time by package or file:`);
for (const [k, t] of top((n) => where(n.callFrame.url, n.callFrame.functionName))) console.log(`${pct(t)}  ${k}`);
console.log('\nself time by function:');
for (const [k, t] of top((n) => `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`)) {
  console.log(`${pct(t)}  ${k}`);
}
console.log('\ninclusive time of our own code (dist/ or src/) and plugins:');
for (const [k, t] of inclusive((n) => /\/(dist|src)\/|@fastify\/|fastify-type-provider-zod|libphonenumber/.test(n.callFrame.url))) console.log(`${pct(t)}  ${k}`);
