import { Module } from '@nestjs/common';
import { RedisLuaModule } from 'nest-redis-lua';
import { PagesController } from './pages.controller';

@Module({
  imports: [
    // Paths are relative to the working directory (the repository root for `npm run sample`).
    RedisLuaModule.forFeature([{ name: 'page-views', path: 'sample-app/lua/page-views.lua', numberOfKeys: 2 }]),
  ],
  controllers: [PagesController],
})
export class PagesModule {}
