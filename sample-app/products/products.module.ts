import { Module } from '@nestjs/common';
import { ProductCatalog } from './product-catalog';
import { ProductsController } from './products.controller';
import { ProductsService } from './products.service';

@Module({ controllers: [ProductsController], providers: [ProductsService, ProductCatalog] })
export class ProductsModule {}
