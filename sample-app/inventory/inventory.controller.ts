import { BadRequestException, Body, Controller, Get, Param, Post, Put, UnprocessableEntityException, UseFilters } from '@nestjs/common';
import { CurrentLock, Idempotent, WithLock, type Lock } from 'nest-redis-lua';
import { InputErrorFilter } from '../common/input-error.filter';
import { InventoryService } from './inventory.service';

interface QuantityBody {
  quantity?: unknown;
}

interface StockBody {
  stock?: unknown;
}

/**
 * Inventory: every write to a SKU runs under the SKU's distributed lock. A request that cannot get
 * the lock within 2 s gets 409 with Retry-After; a reservation larger than the stock gets 422.
 */
@Controller('inventory/:sku')
@UseFilters(InputErrorFilter)
export class InventoryController {
  constructor(private readonly inventory: InventoryService) {}

  @Get()
  levels(@Param('sku') sku: string): Promise<{ sku: string; stock: number; reserved: number }> {
    return this.inventory.levels(sku);
  }

  /** `PUT /inventory/:sku` `{ "stock": 10 }`: sets the stock and clears the reserved count. */
  @Put()
  @WithLock('sku:{params.sku}', { waitMs: 2_000 })
  async setStock(@Param('sku') sku: string, @Body() body: StockBody): Promise<{ sku: string; stock: number; reserved: number }> {
    if (!Number.isSafeInteger(body?.stock) || (body.stock as number) < 0) throw new BadRequestException('stock must be an integer >= 0');
    await this.inventory.setStock(sku, body.stock as number);
    return this.inventory.levels(sku);
  }

  /**
   * `POST /inventory/:sku/reserve` `{ "quantity": 1 }` → the remaining stock and the lock's fence. With
   * an `Idempotency-Key` header, a retry gets the first answer again instead of reserving twice.
   */
  @Post('reserve')
  @WithLock('sku:{params.sku}', { waitMs: 2_000, ttlMs: 10_000 })
  @Idempotent({ required: false })
  async reserve(
    @Param('sku') sku: string,
    @Body() body: QuantityBody,
    @CurrentLock() lock: Lock,
  ): Promise<{ sku: string; quantity: number; remaining: number; fence: number }> {
    const quantity = body?.quantity ?? 1;
    if (typeof quantity !== 'number') throw new BadRequestException('quantity must be a number');
    // Lost the lock (Redis unreachable, expired during a long pause)? Then do not write.
    lock.signal.throwIfAborted();
    const outcome = await this.inventory.reserve(sku, quantity);
    if (!outcome.reserved) throw new UnprocessableEntityException(`only ${outcome.available} of "${sku}" left`);
    return { sku, quantity, remaining: outcome.remaining, fence: lock.fence };
  }
}
