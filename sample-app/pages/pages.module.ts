import { join } from 'node:path';
import { Module } from '@nestjs/common';
import { RedisLuaModule } from 'nest-redis-lua';
import { PagesController } from './pages.controller';

@Module({
  imports: [
    // An absolute path from this file's folder: the same from the sources (tests) and from the build
    // (dist-sample/lua/ is copied there by `npm run build:sample`, or by nest-cli.json's assets).
    RedisLuaModule.forFeature([{ name: 'page-views', path: join(__dirname, '..', 'lua', 'page-views.lua'), numberOfKeys: 2 }]),
  ],
  controllers: [PagesController],
})
export class PagesModule {}
