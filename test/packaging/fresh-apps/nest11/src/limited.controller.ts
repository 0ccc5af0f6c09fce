import { Controller, Get, UseGuards } from '@nestjs/common';
import { RateLimit, RateLimitGuard } from 'nest-redis-lua';

@Controller('limited')
@UseGuards(RateLimitGuard)
export class LimitedController {
  /** Three requests a minute per client; the fourth gets 429. */
  @Get()
  @RateLimit({ limit: 3, windowMs: 60_000 })
  get(): { ok: true } {
    return { ok: true };
  }
}
