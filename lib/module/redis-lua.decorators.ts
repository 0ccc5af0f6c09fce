import { Inject } from '@nestjs/common';
import { REDIS_LUA_CLIENT } from './redis-lua.constants';

/** Injects the module's ioredis client (`Redis`, or `Cluster` when the module was given a cluster). */
export const InjectRedis = (): PropertyDecorator & ParameterDecorator => Inject(REDIS_LUA_CLIENT);
