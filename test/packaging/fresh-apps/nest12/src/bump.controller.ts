import { Controller, Inject, Param, Post } from '@nestjs/common';
import { InjectScript, KeyBuilder, LuaScript, REDIS_LUA_KEYS } from 'nest-redis-lua';

@Controller('bump')
export class BumpController {
  constructor(
    @InjectScript('bump') private readonly bump: LuaScript<number>,
    @Inject(REDIS_LUA_KEYS) private readonly keys: KeyBuilder,
  ) {}

  /** Runs src/lua/bump.lua: the counter of `name` after adding 1. */
  @Post(':name')
  async run(@Param('name') name: string): Promise<{ name: string; value: number }> {
    return { name, value: await this.bump.run([this.keys.key('bump', [name])]) };
  }
}
