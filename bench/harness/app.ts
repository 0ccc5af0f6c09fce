/** A Nest application context with RedisLuaModule.forRoot on the bench's private Redis. */
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisLuaModule, type RedisLuaModuleOptions } from '../../lib';

export async function libraryContext(port: number, extra: Partial<RedisLuaModuleOptions> = {}): Promise<INestApplicationContext> {
  @Module({ imports: [RedisLuaModule.forRoot({ redis: { host: '127.0.0.1', port }, keyPrefix: 'bench', ...extra })] })
  class BenchModule {}
  return NestFactory.createApplicationContext(BenchModule, { logger: false, abortOnError: false });
}
