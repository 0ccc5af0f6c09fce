import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { setTimeout as sleep } from 'node:timers/promises';

/** A product as the (pretend) database returns it. */
export interface Product {
  id: string;
  name: string;
  priceCents: number;
  /** When the database produced this copy (cached copies keep it). */
  loadedAt: string;
}

/**
 * A deliberately slow "database": every load takes `SAMPLE_SLOW_LOADER_MS` (default 1000 ms) and is
 * counted, so the effect of the cache (and of single flight) is visible.
 */
@Injectable()
export class ProductCatalog {
  /** How many times the slow load ran in this process. */
  loads = 0;
  private readonly delayMs: number;

  constructor(config: ConfigService) {
    const delay = Number(config.get<string>('SAMPLE_SLOW_LOADER_MS') ?? 1000);
    this.delayMs = Number.isFinite(delay) && delay >= 0 ? delay : 1000;
  }

  async load(id: string): Promise<Product> {
    this.loads += 1;
    await sleep(this.delayMs);
    let hash = 0;
    for (const char of id) hash = (hash * 31 + char.charCodeAt(0)) % 100_000;
    return { id, name: `Product ${id}`, priceCents: 100 + (hash % 9_900), loadedAt: new Date().toISOString() };
  }
}
