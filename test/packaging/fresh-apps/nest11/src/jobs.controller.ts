import { Body, Controller, Get, Param, Post, Query } from '@nestjs/common';
import { CurrentLock, CurrentLocks, CurrentPermit, Idempotent, LockService, SemaphoreService, WithLock, WithSemaphore, type Lock, type MultiLock } from 'nest-redis-lua';
import { setTimeout as sleep } from 'node:timers/promises';

@Controller('jobs')
export class JobsController {
  constructor(
    private readonly locks: LockService,
    private readonly semaphores: SemaphoreService,
  ) {}

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

  /** Reads share the job's lock; a run (a write lock) excludes them. */
  @Get(':id/status')
  @WithLock('job:{params.id}', { mode: 'read', waitMs: 0 })
  status(@Param('id') id: string, @CurrentLock() lock: Lock): { id: string; fence: number } {
    return { id, fence: lock.fence };
  }

  /** One render at a time over every instance: a concurrent one gets 409 at once. */
  @Post('renders')
  @WithSemaphore('gpu', { permits: 1, waitMs: 0 })
  async render(@Query('holdMs') holdMs: string | undefined, @CurrentPermit() permit: Lock): Promise<{ fence: number }> {
    console.log('rendering');
    await sleep(Number(holdMs ?? 0));
    return { fence: permit.fence };
  }

  /** Both accounts locked together, in arrival order among transfers. */
  @Post('transfers')
  @WithLock(['account:{body.from}', 'account:{body.to}'], { fair: true, waitMs: 5_000 })
  transfer(@Body() body: { from: string; to: string }, @CurrentLocks() locks: MultiLock): { resources: string[]; fences: number[] } {
    return { resources: locks.resources, fences: locks.fences };
  }

  /** A retried order (same Idempotency-Key) gets the first answer, with Idempotent-Replayed: true. */
  @Post('orders')
  @Idempotent()
  order(@Body() body: { item: string }): { order: number; item: string } {
    this.orders += 1;
    return { order: this.orders, item: body.item };
  }

  private orders = 0;

  /** The services themselves: two locks at once, then a permit of a 2-permit semaphore. */
  @Post('batch')
  async batch(): Promise<{ locked: string[]; permit: number }> {
    const locked = await this.locks.withLocks(['batch:in', 'batch:out'], (both) => both.resources, { waitMs: 2_000 });
    const permit = await this.semaphores.withPermit('batch-workers', { permits: 2, waitMs: 2_000 }, (p) => p.fence);
    return { locked, permit };
  }
}
