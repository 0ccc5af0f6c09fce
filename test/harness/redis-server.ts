/**
 * Private redis-server processes for the tests: standalone servers and real Redis Clusters on free
 * loopback ports, each in its own temporary folder. Never touches the Redis at 127.0.0.1:6379.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HOST = '127.0.0.1';
const INSTALL_HINT =
  'redis-server was not found on PATH. Install it with: apt-get install redis-server (the tests start their own private servers).';

/** Throws a one-line install hint when redis-server or redis-cli is missing. */
export function assertRedisInstalled(): void {
  for (const bin of ['redis-server', 'redis-cli']) {
    if (spawnSync(bin, ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error(INSTALL_HINT);
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/**
 * The first port of the kernel's ephemeral range (outgoing connections take their local port from it):
 * a port picked there can be taken by any client socket between the check and the listen.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 21_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** Ports are picked from [10000, first ephemeral port - 10000), so that the bus port stays below the ephemeral range too. */
const PORT_RANGE = { from: 10_000, size: ephemeralLow() - 10_000 - 10_000 };

/** A free port whose cluster bus port (port + 10000) is free too, both outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * PORT_RANGE.size);
    if ((await canListen(port)) && (await canListen(port + 10000))) return port;
  }
  throw new Error('no free loopback port pair found');
}

export interface RedisServerOptions {
  /** Start as a cluster node. */
  cluster?: boolean;
  /** cluster-node-timeout in ms (how fast a failover starts). */
  clusterNodeTimeoutMs?: number;
  /** Extra `--name value` arguments. */
  args?: string[];
}

/** One redis-server child process. `restart()` brings it back on the same port and folder. */
export class RedisServer {
  private process?: ChildProcess;
  private exited?: Promise<void>;
  readonly dir = mkdtempSync(join(tmpdir(), 'nrl-redis-'));

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {}

  static async start(options: RedisServerOptions = {}, port?: number): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()), options);
    await server.launch();
    return server;
  }

  /**
   * A replica of `master` (standalone), resolved once its initial sync is done. Polls INFO
   * replication: the link coming up has no event to await.
   */
  static async startReplicaOf(master: RedisServer, timeoutMs = 30_000): Promise<RedisServer> {
    const replica = await RedisServer.start({ args: ['--replicaof', HOST, String(master.port)] });
    const deadline = Date.now() + timeoutMs;
    while (!/master_link_status:up/.test(replica.cli('info', 'replication'))) {
      if (Date.now() > deadline) {
        await replica.destroy();
        throw new Error(`the replica on port ${replica.port} did not sync with port ${master.port} in time`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return replica;
  }

  get host(): string {
    return HOST;
  }

  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  /** Runs redis-cli against this server; returns trimmed stdout. */
  cli(...args: string[]): string {
    const out = spawnSync('redis-cli', ['-h', HOST, '-p', String(this.port), ...args], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${out.stderr}`);
    return out.stdout.trim();
  }

  /** Stops the process (SIGKILL by default: a crash, nothing saved) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.process;
    if (!child) return;
    // A paused process must be resumed or SIGTERM would wait for ever.
    child.kill('SIGCONT');
    child.kill(signal);
    await this.exited;
  }

  /** Starts the server again on the same port and folder (a cluster node rejoins from nodes.conf). */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** SIGSTOP: the server stops answering but keeps its connections (a "slow" Redis). */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  resume(): void {
    this.process?.kill('SIGCONT');
  }

  /** Stops the process and removes its folder. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private launch(): Promise<void> {
    const { cluster, clusterNodeTimeoutMs = 5000, args = [] } = this.options;
    const argv = [
      '--port',
      String(this.port),
      '--bind',
      HOST,
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--enable-debug-command',
      'local',
      '--loglevel',
      'notice',
      ...(cluster
        ? ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(clusterNodeTimeoutMs)]
        : []),
      ...args,
    ];
    const child = spawn('redis-server', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      if (this.process === child) this.process = undefined;
    });
    watchParent(child);
    return new Promise((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          child.stdout?.off('data', onData);
          child.stdout?.resume();
          child.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null): void =>
        reject(new Error(`redis-server on port ${this.port} exited (${code}) before it was ready:\n${output.slice(-2000)}`));
      child.stdout?.on('data', onData);
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', onExit);
    });
  }
}

/**
 * If the test runner dies without its teardown (SIGKILL, a crash), a tiny detached watcher kills the
 * server when the runner's process is gone, so no redis-server outlives a run.
 */
function watchParent(child: ChildProcess): void {
  if (!child.pid) return;
  const watcher = spawn(
    'sh',
    [
      '-c',
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`,
    ],
    { detached: true, stdio: 'ignore' },
  );
  watcher.unref();
}

export interface ClusterAddress {
  host: string;
  port: number;
}

/** A real Redis Cluster made of private servers and `redis-cli --cluster create`. */
export class RedisClusterHarness {
  private constructor(readonly servers: RedisServer[]) {}

  static async start(
    options: { masters?: number; replicasPerMaster?: number; clusterNodeTimeoutMs?: number } = {},
  ): Promise<RedisClusterHarness> {
    const { masters = 3, replicasPerMaster = 0, clusterNodeTimeoutMs = 5000 } = options;
    const count = masters * (1 + replicasPerMaster);
    const servers: RedisServer[] = [];
    try {
      for (let i = 0; i < count; i++) servers.push(await RedisServer.start({ cluster: true, clusterNodeTimeoutMs }));
      const create = spawnSync(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...servers.map((s) => `${HOST}:${s.port}`),
          '--cluster-replicas',
          String(replicasPerMaster),
          '--cluster-yes',
        ],
        { encoding: 'utf8' },
      );
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
      const harness = new RedisClusterHarness(servers);
      await harness.waitUntilHealthy();
      return harness;
    } catch (err) {
      await Promise.all(servers.map((s) => s.destroy()));
      throw err;
    }
  }

  get nodes(): ClusterAddress[] {
    return this.servers.map((s) => ({ host: s.host, port: s.port }));
  }

  /** The running servers that currently are masters. */
  masters(): RedisServer[] {
    return this.servers.filter((s) => s.running && /role:master/.test(s.cli('info', 'replication')));
  }

  /**
   * Waits until every running node reports cluster_state:ok, all 16384 slots are served, every
   * replica has finished its initial sync and CLUSTER SLOTS lists every running node. Polls CLUSTER INFO: the cluster has no event to await.
   */
  async waitUntilHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.servers.filter((s) => s.running);
      const healthy = running.every((s) => {
        try {
          const info = s.cli('cluster', 'info');
          const replication = s.cli('info', 'replication');
          // CLUSTER SLOTS lists a replica only once the cluster has heard of its replication offset
          // (a ping or two after its sync): clients learn replicas from it (readFrom: 'replica').
          const listed = s.cli('cluster', 'slots').match(/^[0-9a-f]{40}$/gm)?.length ?? 0;
          return (
            info.includes('cluster_state:ok') &&
            info.includes('cluster_slots_ok:16384') &&
            (!replication.includes('role:slave') || replication.includes('master_link_status:up')) &&
            listed === running.length
          );
        } catch {
          return false;
        }
      });
      if (healthy) return;
      if (Date.now() > deadline) throw new Error('the test cluster did not become healthy in time');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async destroy(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.destroy()));
  }
}
