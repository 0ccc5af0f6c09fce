/**
 * An application script for {@link RedisLuaModule.forFeature}: give `path` (an absolute path to a
 * `.lua` file, e.g. `join(__dirname, 'lua', 'transfer.lua')`; its `--- @include "file"` lines are
 * resolved relative to it) or `lua` (the body).
 */
export interface LuaScriptDefinition {
  /** The name to inject it by (`@InjectScript(name)`); unique in the application. */
  name: string;
  /**
   * Absolute path of a `.lua` file. A relative path fails boot: it would depend on the working
   * directory. After `nest build`, the file must be copied next to the compiled code
   * (`"assets": ["**\/*.lua"]` in nest-cli.json's `compilerOptions`).
   */
  path?: string;
  /** The script body itself. */
  lua?: string;
  /** If set, every `run` must pass exactly this many keys. */
  numberOfKeys?: number;
}
