import { Controller, Get, UseGuards } from '@nestjs/common';
import { RateLimit, RateLimitGuard } from 'nest-redis-lua';

/** `GET /hello`: 5 requests per 10 s per client IP, then 429 with Retry-After. */
@Controller('hello')
@UseGuards(RateLimitGuard)
export class HelloController {
  @Get()
  @RateLimit({ limit: 5, windowMs: 10_000 })
  hello(): { message: string } {
    return { message: 'Hello from nest-redis-lua' };
  }
}
