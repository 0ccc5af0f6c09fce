import { Injectable } from '@nestjs/common';
import { BoundedCounterService } from 'nest-redis-lua';

/** What a reservation did. */
export type ReserveOutcome = { reserved: true; remaining: number } | { reserved: false; available: number };

/**
 * Stock per SKU in bounded counters: stock never goes below 0, whatever the concurrency. A second
 * counter records how many units were reserved; the route's lock keeps the two in step
 * (stock + reserved = what was put in), which two separate atomic writes alone would not.
 */
@Injectable()
export class InventoryService {
  constructor(private readonly counters: BoundedCounterService) {}

  async setStock(sku: string, stock: number): Promise<void> {
    await this.counters.set(`stock:${sku}`, stock);
    await this.counters.set(`reserved:${sku}`, 0);
  }

  async levels(sku: string): Promise<{ sku: string; stock: number; reserved: number }> {
    const [stock, reserved] = await Promise.all([this.counters.get(`stock:${sku}`), this.counters.get(`reserved:${sku}`)]);
    return { sku, stock, reserved };
  }

  /** Takes `quantity` units off the stock unless fewer are left. Call it holding the SKU's lock. */
  async reserve(sku: string, quantity: number): Promise<ReserveOutcome> {
    const taken = await this.counters.decrement(`stock:${sku}`, quantity, 0);
    if (!taken.applied) return { reserved: false, available: taken.value };
    await this.counters.increment(`reserved:${sku}`, quantity, Number.MAX_SAFE_INTEGER);
    return { reserved: true, remaining: taken.value };
  }
}
