import { Injectable, ServiceUnavailableException } from '@nestjs/common';
import { CacheAsideService, RateLimiterService, type RateLimitRule } from 'nest-redis-lua';
import { ProductCatalog, type Product } from './product-catalog';

/** The catalog database takes at most 5 loads per second from all instances of the app together. */
export const CATALOG_RATE: RateLimitRule = { limit: 5, windowMs: 1_000, name: 'catalog' };

/**
 * Products through cache-aside: cached for 60 s; on a miss one caller (across every instance of the
 * app) runs the slow load while concurrent callers wait for its result. A load first waits (up to 2 s)
 * for a slot of the catalog's rate: a burst of misses is spread out instead of overloading it.
 */
@Injectable()
export class ProductsService {
  constructor(
    private readonly cache: CacheAsideService,
    private readonly catalog: ProductCatalog,
    private readonly limiter: RateLimiterService,
  ) {}

  find(id: string): Promise<Product> {
    return this.cache.getOrLoad(`product:${id}`, 60_000, () => this.load(id), { lockTtlMs: 10_000, waitMs: 10_000 });
  }

  /** Drops the cached copy (after a write to the database). */
  invalidate(id: string): Promise<boolean> {
    return this.cache.invalidate(`product:${id}`);
  }

  private async load(id: string): Promise<Product> {
    const slot = await this.limiter.consume('product-catalog', CATALOG_RATE, { waitMs: 2_000 });
    if (!slot.allowed) throw new ServiceUnavailableException('The product catalog is busy, try again in a moment');
    return this.catalog.load(id);
  }
}
