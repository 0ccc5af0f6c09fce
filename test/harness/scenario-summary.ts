/**
 * Figures of the fault-injection scenarios: each test records a row; global teardown prints them all
 * as one table at the end of `npm test`. Rows travel through a JSON-lines file because jest runs test
 * files in worker processes.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

export const SUMMARY_ENV = 'NRL_SCENARIO_SUMMARY';

export interface ScenarioRow {
  scenario: string;
  topology: string;
  operations: number;
  failures: number;
  unhandledRejections: number;
  maxLatencyMs: number;
  /** Anything else worth a column (e.g. "failover 4.2 s"). */
  note?: string;
}

/** The file global setup creates for this run. */
export function summaryFile(): string {
  return process.env[SUMMARY_ENV] ?? join(tmpdir(), `nrl-scenarios-${process.pid}.jsonl`);
}

export function recordScenario(row: ScenarioRow): void {
  appendFileSync(summaryFile(), `${JSON.stringify(row)}\n`);
}

export function readScenarios(file: string): ScenarioRow[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ScenarioRow);
}

export function formatScenarios(rows: readonly ScenarioRow[]): string {
  const header = ['scenario', 'topology', 'operations', 'failures', 'unhandled rejections', 'max latency ms', 'note'];
  const cells = rows.map((r) => [
    r.scenario,
    r.topology,
    String(r.operations),
    String(r.failures),
    String(r.unhandledRejections),
    r.maxLatencyMs.toFixed(0),
    r.note ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (values: string[]): string => `| ${values.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
