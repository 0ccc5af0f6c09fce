/**
 * `npm run sample`: starts the sample app. Uses REDIS_URL / REDIS_CLUSTER_NODES when set; otherwise
 * starts a private redis-server child process on a free loopback port (nothing kept on disk), says
 * so, and stops it when the app exits. It never uses a Redis nobody named (such as a developer's own
 * server on 6379).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootstrap } from './main';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts `redis-server` on a free loopback port, keeping nothing on disk. */
async function startPrivateRedis(): Promise<{ url: string; pid: number | undefined; stop: () => Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'nrl-sample-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.once('error', (err) =>
      reject(new Error(`cannot start redis-server (${err.message}); install it with: apt-get install redis-server`)),
    );
    child.once('exit', (code) => reject(new Error(`redis-server exited with code ${code}:\n${output}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    });
  });
  child.stdout?.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  let redis: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
  if (process.env.REDIS_CLUSTER_NODES) {
    console.log(`Using the Redis Cluster of REDIS_CLUSTER_NODES: ${process.env.REDIS_CLUSTER_NODES}`);
  } else if (process.env.REDIS_URL) {
    console.log(`Using the Redis of REDIS_URL: ${process.env.REDIS_URL.replace(/\/\/([^@/]*)@/, '//***@')}`);
  } else {
    redis = await startPrivateRedis();
    process.env.REDIS_URL = redis.url;
    console.log(
      `No REDIS_URL or REDIS_CLUSTER_NODES given: started a private redis-server (pid ${redis.pid}) at ${redis.url}; it stops when the app exits.`,
    );
  }
  // Last resort: never leave the child behind, even on an unexpected exit.
  process.once('exit', () => {
    if (redis?.pid) {
      try {
        process.kill(redis.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  });
  let close: (() => Promise<void>) | undefined;
  let closing: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (closing ??= (async () => {
      try {
        await close?.();
      } finally {
        await redis?.stop();
      }
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      shutdown().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(err);
          process.exit(1);
        },
      );
    });
  }
  try {
    close = await bootstrap(undefined, { shutdownHooks: false });
  } catch (err) {
    await redis?.stop();
    throw err;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
