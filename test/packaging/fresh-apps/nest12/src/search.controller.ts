import { Controller, Get } from '@nestjs/common';
import { RateLimit } from 'nest-redis-lua';

@Controller('search')
export class SearchController {
  /** As the README shows it: per client IP, a denied client answered by RateLimitMiddleware before routing. */
  @Get()
  @RateLimit({ limit: 1, windowMs: 60_000, earlyDeny: true })
  search(): string {
    return 'results';
  }
}
