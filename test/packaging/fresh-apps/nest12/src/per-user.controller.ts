import { Controller, Get, type ExecutionContext } from '@nestjs/common';
import { RateLimit } from 'nest-redis-lua';

/** The header a client identifies itself with; `undefined` when it sends none. */
const userOf = (ctx: ExecutionContext): string => ctx.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-user'];

@Controller('per-user')
export class PerUserController {
  /** As the README shows it: @RateLimit alone, no guard registered, one request a minute per user. */
  @Get()
  @RateLimit({ limit: 1, windowMs: 60_000, key: userOf })
  get(): { ok: true } {
    return { ok: true };
  }
}
