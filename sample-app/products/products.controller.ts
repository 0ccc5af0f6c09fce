import { BadRequestException, Controller, Delete, Get, HttpCode, Param, UseFilters } from '@nestjs/common';
import { InputErrorFilter } from '../common/input-error.filter';
import type { Product } from './product-catalog';
import { ProductsService } from './products.service';

const PRODUCT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** `GET /products/:id`: the first call takes the slow path, later ones come from Redis. */
@Controller('products')
@UseFilters(InputErrorFilter)
export class ProductsController {
  constructor(private readonly products: ProductsService) {}

  @Get(':id')
  find(@Param('id') id: string): Promise<Product> {
    return this.products.find(checkId(id));
  }

  /** `DELETE /products/:id/cache`: the next GET loads again. */
  @Delete(':id/cache')
  @HttpCode(200)
  async invalidate(@Param('id') id: string): Promise<{ invalidated: boolean }> {
    return { invalidated: await this.products.invalidate(checkId(id)) };
  }
}

function checkId(id: string): string {
  if (!PRODUCT_ID.test(id)) throw new BadRequestException('a product id is 1 to 64 letters, digits, "_" or "-"');
  return id;
}
