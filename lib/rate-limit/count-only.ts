import type { Logger } from '@nestjs/common';
import { message } from '../core/messages';
import type { HeaderTarget } from '../core/http';

/** What a `countOnly` route reads of the Node response (Express's `res`, Fastify's `reply.raw`). */
interface NodeResponse {
  statusCode: number;
  writableFinished: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * `@RateLimit({ countOnly })`: once the response has ended, gives the admitted request back with
 * `refund` unless its status is one that counts (>= 400 for `'failed'`, < 400 for `'succeeded'`), and
 * when the client went away before the response ended. A refund that fails is logged, never thrown.
 */
export function refundUnlessCounted(
  res: HeaderTarget | undefined,
  countOnly: 'failed' | 'succeeded',
  refund: () => Promise<void>,
  logger: Logger,
  where: string,
): void {
  const raw = ((res as { raw?: unknown } | undefined)?.raw ?? res) as NodeResponse | undefined;
  raw?.once('close', () => {
    const status = raw.statusCode;
    if (raw.writableFinished && (countOnly === 'failed' ? status >= 400 : status < 400)) return;
    refund().catch((err: unknown) => {
      const reason = err instanceof Error ? err.message : String(err);
      logger.warn(message(`@RateLimit on ${where}`, `a request that does not count (countOnly "${countOnly}") stays counted: ${reason}`));
    });
  });
}
