import { Controller, Inject, Param, Post } from '@nestjs/common';
import { InjectScript, REDIS_LUA_KEYS, type KeyBuilder, type LuaScript } from 'nest-redis-lua';

/** A custom script registered with `forFeature` and injected with `@InjectScript`. */
@Controller('pages')
export class PagesController {
  constructor(
    @InjectScript('page-views') private readonly pageViews: LuaScript<[number, number]>,
    @Inject(REDIS_LUA_KEYS) private readonly keys: KeyBuilder,
  ) {}

  @Post(':id/views')
  async view(@Param('id') id: string): Promise<{ page: string; views: number; rank: number }> {
    // Both keys carry the tag "site", so they share a cluster slot.
    const [views, rank] = await this.pageViews.run(
      [this.keys.key('sample', ['site'], 'views'), this.keys.key('sample', ['site'], 'ranking')],
      [id],
    );
    return { page: id, views, rank };
  }
}
