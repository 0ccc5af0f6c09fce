import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { RedisLuaHealthIndicator } from 'nest-redis-lua';

/** `GET /health`: Terminus with the library's Redis indicator (PING + scripts cached on every node). */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly redis: RedisLuaHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.redis.isHealthy('redis', { timeoutMs: 1000 })]);
  }
}
