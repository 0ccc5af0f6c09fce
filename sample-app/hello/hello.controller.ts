import { Controller, Get, UseGuards } from '@nestjs/common';
import { RateLimit, RateLimitGuard } from 'nest-redis-lua';

/**
 * `GET /hello`: 5 requests per 10 s per client IP, then 429 with Retry-After; while denied, the client's
 * next requests are answered by RateLimitMiddleware (installed in main.ts) before Nest routes them.
 */
@Controller('hello')
@UseGuards(RateLimitGuard)
export class HelloController {
  @Get()
  @RateLimit({ limit: 5, windowMs: 10_000, earlyDeny: true })
  hello(): { message: string } {
    return { message: 'Hello from nest-redis-lua' };
  }
}
