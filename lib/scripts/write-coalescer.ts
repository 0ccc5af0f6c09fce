import type { Cluster, Redis } from 'ioredis';
import { isCluster } from '../module/redis-connection';

/** Script calls written to a socket before it is flushed (see {@link WriteCoalescer}; 16 and 32 measured alike, 64 worse). */
const WRITE_BATCH = 16;

/** What the coalescer needs from a socket: Node's `Writable` cork/uncork. */
interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Sends the script calls made in one pass of the event loop in a few socket writes instead of one
 * write (one system call, and one read on the Redis side) per call. Before a call is written, the
 * connection's sockets are corked; they are uncorked after every 16 calls, so Redis starts on the
 * first calls while later ones are still being prepared, and once the I/O callbacks that are ready now
 * have run (`setImmediate`): an HTTP server that reads 20 requests in one pass sends their 20 rate
 * checks in two writes, not twenty (`process.nextTick` would flush after each request). A call thus
 * waits at most for 15 more calls or for the end of the current poll phase. Commands keep their order.
 *
 * ioredis `enableAutoPipelining` batches with a `Pipeline` object per batch, flushed only at the end
 * of the pass, and on a cluster groups EVALSHA by SHA, not by slot. Corking keeps ioredis's normal
 * routing and allocates nothing per call. Measured in bench/. @internal
 */
export class WriteCoalescer {
  /** Sockets corked now (each corked once), or undefined. */
  private corked?: Corkable[];
  private written = 0;
  private flushScheduled = false;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.release();
  };

  constructor(private readonly client: Redis | Cluster) {}

  /** Call right before a command is sent: corks the sockets, or flushes a full batch first. */
  beforeWrite(): void {
    if (this.corked !== undefined && this.written >= WRITE_BATCH) this.release();
    if (this.corked === undefined) {
      this.corked = this.sockets();
      for (const socket of this.corked) socket.cork();
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    }
    this.written++;
  }

  /** Writes what the corked sockets hold (one system call per socket). */
  private release(): void {
    const corked = this.corked;
    this.corked = undefined;
    this.written = 0;
    if (corked) for (const socket of corked) socket.uncork();
  }

  /**
   * The connected sockets a script call may be written to: the server's, or each cluster master's.
   * A connection that is not ready queues commands itself (nothing to cork).
   */
  private sockets(): Corkable[] {
    const { client } = this;
    const sockets: Corkable[] = [];
    if (isCluster(client)) {
      for (const node of client.nodes('master')) {
        if (node.status === 'ready' && node.stream) sockets.push(node.stream);
      }
    } else if (client.status === 'ready' && client.stream) {
      sockets.push(client.stream);
    }
    return sockets;
  }
}
