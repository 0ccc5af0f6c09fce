import { Controller, Get, UseGuards } from '@nestjs/common';
import { RateLimit, RateLimitGuard } from 'nest-redis-lua';

@Controller('limited')
@UseGuards(RateLimitGuard)
export class LimitedController {
  @Get()
  @RateLimit({ limit: 3, windowMs: 60_000 })
  get(): { ok: true } {
    return { ok: true };
  }
}
