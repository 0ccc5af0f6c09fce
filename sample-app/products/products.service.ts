import { Injectable } from '@nestjs/common';
import { CacheAsideService } from 'nest-redis-lua';
import { ProductCatalog, type Product } from './product-catalog';

/**
 * Products through cache-aside: cached for 60 s; on a miss one caller (across every instance of the
 * app) runs the slow load while concurrent callers wait for its result.
 */
@Injectable()
export class ProductsService {
  constructor(
    private readonly cache: CacheAsideService,
    private readonly catalog: ProductCatalog,
  ) {}

  find(id: string): Promise<Product> {
    return this.cache.getOrLoad(`product:${id}`, 60_000, () => this.catalog.load(id), { lockTtlMs: 10_000, waitMs: 10_000 });
  }

  /** Drops the cached copy (after a write to the database). */
  invalidate(id: string): Promise<boolean> {
    return this.cache.invalidate(`product:${id}`);
  }
}
