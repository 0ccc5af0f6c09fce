import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisLuaModule, type RedisLuaModuleOptions } from '../../lib';

/**
 * Boots a real application context (not a testing module) with `RedisLuaModule.forRoot(options)`,
 * closes it, and returns the boot error, if any: what tests of boot-time validation need.
 */
export async function bootError(options: RedisLuaModuleOptions): Promise<Error | undefined> {
  @Module({ imports: [RedisLuaModule.forRoot(options)] })
  class AppModule {}
  try {
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
    await app.close();
    return undefined;
  } catch (err) {
    return err as Error;
  }
}
