import { Inject } from '@nestjs/common';

/** The injection token of a `forFeature` script. */
export function getScriptToken(name: string): string {
  return `nest-redis-lua:script:${name}`;
}

/** Injects the {@link LuaScript} registered under `name` with `RedisLuaModule.forFeature`. */
export const InjectScript = (name: string): PropertyDecorator & ParameterDecorator => Inject(getScriptToken(name));
