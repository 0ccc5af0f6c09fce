/**
 * An application script for {@link RedisLuaModule.forFeature}: give `path` (a `.lua` file; absolute,
 * or relative to the working directory; `--- @include "file"` lines are resolved) or `lua` (the body).
 */
export interface LuaScriptDefinition {
  /** The name to inject it by (`@InjectScript(name)`); unique in the application. */
  name: string;
  /** A `.lua` file. */
  path?: string;
  /** The script body itself. */
  lua?: string;
  /** If set, every `run` must pass exactly this many keys. */
  numberOfKeys?: number;
}
