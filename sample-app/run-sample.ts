/**
 * `npm run sample`: starts the sample app. Uses REDIS_URL / REDIS_CLUSTER_NODES when set; otherwise the
 * Redis at SAMPLE_DEFAULT_REDIS (default redis://127.0.0.1:6379) if it answers; otherwise starts a
 * private redis-server child process on a free port, says so, and stops it when the app exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootstrap } from './main';

/** True if a Redis server answers PING at host:port within 500 ms. */
function redisAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

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
async function startPrivateRedis(): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'nrl-sample-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
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
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  let stopRedis: (() => void) | undefined;
  if (!process.env.REDIS_URL && !process.env.REDIS_CLUSTER_NODES) {
    const fallback = new URL(process.env.SAMPLE_DEFAULT_REDIS ?? 'redis://127.0.0.1:6379');
    if (await redisAnswers(fallback.hostname, Number(fallback.port || 6379))) {
      process.env.REDIS_URL = fallback.toString();
    } else {
      const redis = await startPrivateRedis();
      stopRedis = redis.stop;
      process.env.REDIS_URL = redis.url;
      console.log(`Nothing answers at ${fallback.host}: started a private redis-server at ${redis.url} (stopped on exit).`);
    }
  }
  let close: (() => Promise<void>) | undefined;
  const shutdown = async (): Promise<void> => {
    await close?.();
    stopRedis?.();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void shutdown());
  process.once('exit', () => stopRedis?.());
  try {
    close = await bootstrap();
  } catch (err) {
    stopRedis?.();
    throw err;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
