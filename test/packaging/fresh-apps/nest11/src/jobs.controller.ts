import { Controller, Param, Post, Query } from '@nestjs/common';
import { CurrentLock, WithLock, type Lock } from 'nest-redis-lua';
import { setTimeout as sleep } from 'node:timers/promises';

@Controller('jobs')
export class JobsController {
  /** One run per job at a time: a concurrent request gets 409 (with Retry-After) at once. */
  @Post(':id/run')
  @WithLock('job:{params.id}', { waitMs: 0 })
  async run(
    @Param('id') id: string,
    @Query('holdMs') holdMs: string | undefined,
    @CurrentLock() lock: Lock,
  ): Promise<{ id: string; fence: number }> {
    console.log(`holding job ${id}`);
    await sleep(Number(holdMs ?? 0));
    return { id, fence: lock.fence };
  }
}
