/** Tables on stdout and results in bench/results/ (JSON, Markdown, an SVG bar chart). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Column {
  key: string;
  label: string;
  digits?: number;
}

export interface ResultRow {
  name: string;
  values: Record<string, number>;
}

export interface TargetCheck {
  description: string;
  /** The measured figure (a ratio, µs, bytes). */
  measured: number;
  /** How it is judged, e.g. "≥ 1.2". */
  target: string;
  met: boolean;
  /** A reference figure printed with the targets (e.g. a floor no implementation can go below), not judged. */
  reference?: boolean;
}

export interface SuiteResult {
  id: string;
  title: string;
  setup: string;
  columns: Column[];
  rows: ResultRow[];
  targets: TargetCheck[];
  /** Column of `rows` drawn in the SVG chart (omit to leave the suite out of the chart). */
  chartKey?: string;
  chartLabel?: string;
}

export function ratioCheck(description: string, measured: number, atLeast: number): TargetCheck {
  return { description, measured, target: `≥ ${atLeast}`, met: measured >= atLeast };
}

export function limitCheck(description: string, measured: number, atMost: number): TargetCheck {
  return { description, measured, target: `≤ ${atMost}`, met: measured <= atMost };
}

const fmt = (value: number, digits = 0): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';

export function markdownTable(suite: SuiteResult): string {
  const header = `| ${['', ...suite.columns.map((c) => c.label)].join(' | ')} |`;
  const rule = `|${['---', ...suite.columns.map(() => '---:')].join('|')}|`;
  const body = suite.rows.map((row) => `| ${[row.name, ...suite.columns.map((c) => fmt(row.values[c.key], c.digits))].join(' | ')} |`);
  const targets = suite.targets.map(
    (t) => `| ${t.description} | ${fmt(t.measured, 2)} | ${t.target} | ${t.reference ? 'reference' : t.met ? 'met' : '**missed**'} |`,
  );
  return [
    `### ${suite.title}`,
    '',
    suite.setup,
    '',
    header,
    rule,
    ...body,
    ...(targets.length ? ['', '| target | measured | goal | |', '|---|---:|---:|---|', ...targets] : []),
    '',
  ].join('\n');
}

/** Horizontal bars, one block per suite that has a chartKey, scaled per suite. */
export function svgChart(suites: readonly SuiteResult[]): string {
  const charted = suites.filter((s) => s.chartKey);
  const barHeight = 18;
  const labelWidth = 330;
  const barWidth = 420;
  let y = 30;
  const parts: string[] = [];
  for (const suite of charted) {
    parts.push(
      `<text x="10" y="${y}" font-weight="bold">${escapeXml(suite.title)} — ${escapeXml(suite.chartLabel ?? suite.chartKey!)}</text>`,
    );
    y += 10;
    const max = Math.max(...suite.rows.map((r) => r.values[suite.chartKey!] || 0), 1);
    for (const row of suite.rows) {
      const value = row.values[suite.chartKey!] || 0;
      const width = Math.max(1, (value / max) * barWidth);
      const ours = row.name.startsWith('nest-redis-lua');
      parts.push(
        `<text x="10" y="${y + 13}">${escapeXml(row.name)}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${width.toFixed(1)}" height="${barHeight - 4}" fill="${ours ? '#d6336c' : '#868e96'}"/>`,
        `<text x="${labelWidth + width + 6}" y="${y + 13}">${fmt(value)}</text>`,
      );
      y += barHeight;
    }
    y += 24;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + barWidth + 110}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Writes latest.json, latest.md and chart.svg under `dir`; returns the Markdown. */
export function writeResults(dir: string, suites: readonly SuiteResult[], meta: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  const markdown = [
    '# nest-redis-lua benchmarks',
    '',
    ...Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`),
    '',
    'Medians of interleaved rounds; compare ratios within one run, not absolute figures across machines.',
    '',
    ...suites.map(markdownTable),
  ].join('\n');
  writeFileSync(join(dir, 'latest.json'), `${JSON.stringify({ meta, suites }, null, 2)}\n`);
  writeFileSync(join(dir, 'latest.md'), markdown);
  writeFileSync(join(dir, 'chart.svg'), svgChart(suites));
  return markdown;
}
