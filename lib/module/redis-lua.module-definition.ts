import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RedisLuaModuleOptions } from './redis-lua-options.interface';

export const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN, OPTIONS_TYPE, ASYNC_OPTIONS_TYPE } =
  new ConfigurableModuleBuilder<RedisLuaModuleOptions>({ moduleName: 'RedisLua' })
    .setClassMethodName('forRoot')
    .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
    .build();
