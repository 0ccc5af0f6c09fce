/**
 * Runs autocannon load generators in child processes (bench/harness/load-generator.cjs), so that the
 * HTTP server process runs alone: its req/s is not cut by the generator's own work on its event loop.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type autocannon from 'autocannon';

const CHILD = join(__dirname, 'load-generator.cjs');

/** What one generator measured. */
export interface LoadResult {
  /** Mean requests per second over the run. */
  average: number;
  total: number;
  non2xx: number;
  errors: number;
}

/** One generator's settings. */
export interface Load {
  url: string;
  connections: number;
  seconds: number;
  requests?: autocannon.Request[];
}

interface Child {
  ready: Promise<void>;
  result: Promise<LoadResult>;
  start(): void;
}

function startChild(load: Load): Child {
  const options = { url: load.url, connections: load.connections, duration: load.seconds, requests: load.requests };
  const child = spawn(process.execPath, [CHILD, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const result = new Promise<LoadResult>((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (out.startsWith('ready\n')) onReady();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) return reject(new Error(`load generator exited with ${code}: ${out}`));
      resolve(JSON.parse(last) as LoadResult);
    });
  });
  // A child that dies before it is ready must not leave `ready` pending forever.
  result.catch(() => onReady());
  return { ready, result, start: () => child.stdin.end('go\n') };
}

/**
 * Runs the generators together in child processes: each starts, loads autocannon, and all start
 * sending at the same moment. Resolves with one result per load, in order.
 */
export async function runLoads(loads: readonly Load[]): Promise<LoadResult[]> {
  const children = loads.map(startChild);
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.start();
  return Promise.all(children.map((c) => c.result));
}
