/**
 * Self and inclusive time by function of a .cpuprofile:
 *   node -r @swc-node/register bench/tools/profile-summary.ts <file> [top=30]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const profile = JSON.parse(readFileSync(process.argv[2], 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, Node>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
const label = (n: Node): string =>
  `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/.*\/(node_modules\/)?/, '')}:${n.callFrame.lineNumber + 1}`;
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const n = byId.get(id)!;
  self.set(label(n), (self.get(label(n)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let q: Node | undefined = n; q; q = parent.get(q.id)) {
    const l = label(q);
    if (!seen.has(l)) inclusive.set(l, (inclusive.get(l) ?? 0) + dt);
    seen.add(l);
  }
});
const top = Number(process.argv[3] ?? 30);
const show = (title: string, m: Map<string, number>, filter = (_: string) => true): void => {
  console.log(title);
  for (const [name, t] of [...m]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
};
show('self', self);
show('inclusive (library code)', inclusive, (k) => /lib\/|\.ts:/.test(k) && !/bench\//.test(k));
