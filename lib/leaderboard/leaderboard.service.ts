import { Inject, Injectable } from '@nestjs/common';
import { REDIS_LUA_KEYS } from '../module/redis-lua.constants';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { checkFinite, checkInteger, fail, inputSite, type InputSite } from '../core/validation';
import { LUA_CONSTANTS } from '../scripts/bundled-scripts.generated';
import { LeaderboardInputError } from './leaderboard.errors';
import {
  MAX_READ_ENTRIES,
  checkBoard,
  checkMember,
  checkMode,
  configArgs,
  orderArg,
  parseScore,
  type LeaderboardConfig,
  type LeaderboardEntry,
  type LeaderboardHistoryEntry,
  type LeaderboardReadOptions,
  type SubmitOptions,
  type SubmitResult,
} from './leaderboard.options';

/** submit.lua's reply, or LB_OVERFLOW when an increment would reach ±infinity (nothing changed). */
type SubmitReply = [number | null, string | null, 0 | 1, string | null] | typeof LUA_CONSTANTS.LB_OVERFLOW;

/** Key feature name: keys look like `<prefix>:lb:{<board>}:...`. */
const FEATURE = 'lb';

const site = (method: string): InputSite => inputSite(`LeaderboardService.${method}`, LeaderboardInputError);
const CONFIGURE = site('configure');
const SUBMIT = site('submit');
const TOP = site('top');
const AROUND = site('around');
const RANK = site('rank');
const SCORE = site('score');
const HISTORY = site('history');
const COUNT = site('count');
const REMOVE = site('remove');
const RESET = site('reset');

/** The keys of one board; all carry the board as hash tag, so they share one cluster slot. */
interface BoardKeys {
  scores: string;
  config: string;
  histories: string;
}

/**
 * Atomic leaderboards on Redis sorted sets, with per-member score history.
 *
 * Every key of a board (scores, configuration, each member's history) carries the board name as its
 * hash tag: one cluster slot per board, one script per write. Ranks are standard competition ranks
 * (equal scores share a rank: 1, 2, 2, 4).
 */
@Injectable()
export class LeaderboardService {
  private readonly submitScript: LuaScript<SubmitReply>;
  private readonly rangeScript: LuaScript<Array<string | number>>;
  private readonly entryScript: LuaScript<[number, string] | null>;
  private readonly removeScript: LuaScript<0 | 1>;
  private readonly resetScript: LuaScript<number>;
  private readonly configureScript: LuaScript<1>;

  constructor(
    private readonly engine: LuaScriptEngine,
    @Inject(REDIS_LUA_KEYS) private readonly keys: KeyBuilder,
  ) {
    this.submitScript = engine.bundled('leaderboard/submit', 4);
    this.rangeScript = engine.bundled('leaderboard/range', 2);
    this.entryScript = engine.bundled('leaderboard/entry', 2);
    this.removeScript = engine.bundled('leaderboard/remove', 3);
    this.resetScript = engine.bundled('leaderboard/reset', 2);
    this.configureScript = engine.bundled('leaderboard/configure', 1);
  }

  /**
   * Stores a board's settings in Redis (replacing earlier ones), so that every instance of the
   * application uses them. Options given to a call override them for that call.
   * @throws LeaderboardInputError for an empty or over-long board or member, or a wrong argument or option.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * await boards.configure('laps', { order: 'asc', maxEntries: 100 });
   */
  async configure(board: string, config: LeaderboardConfig): Promise<void> {
    const keys = this.boardKeys(board, CONFIGURE);
    await this.configureScript.run([keys.config], configArgs(config, CONFIGURE));
  }

  /**
   * Submits `score` for `member` in one atomic script: applies it by `mode` (default `best`), records
   * it in the member's history, trims the board to `maxEntries` (removing the worst entries) and
   * reports the member's standing. `rank` is `null` when the member did not make it onto the board.
   * @throws LeaderboardInputError for a non-finite score, an empty or over-long member, a wrong option,
   *   or an `increment` that would take the member's score to ±infinity (nothing is changed).
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within
   *   `commandTimeout`, or refuses the write (out of memory, ...).
   * @example
   * const { rank, personalBest } = await boards.submit('tetris', 'ada', 4200);
   */
  async submit(board: string, member: string, score: number, options: SubmitOptions = {}): Promise<SubmitResult> {
    const keys = this.boardKeys(board, SUBMIT);
    checkMember(member, SUBMIT);
    checkFinite(score, 'score', SUBMIT);
    const mode = checkMode(options.mode, SUBMIT);
    const [order, maxEntries, historyLength] = configArgs(options, SUBMIT);
    const reply = await this.submitScript.run(
      [keys.scores, keys.config, this.historyKey(board, member), keys.histories],
      [member, String(score), mode, order, maxEntries, historyLength],
    );
    if (reply === LUA_CONSTANTS.LB_OVERFLOW) {
      fail(
        SUBMIT,
        'score',
        `adding ${score} to the score of "${member}" would take it beyond the range of a double (±1.8e308): nothing was changed`,
      );
    }
    const [rank, current, personalBest, previous] = reply;
    if (this.engine.telemetry?.recording) {
      const outcome = rank === null || rank === undefined ? 'off-board' : personalBest === 1 ? 'best' : 'not-best';
      this.engine.telemetry.emit({ type: 'leaderboard.submission', outcome, board });
    }
    return {
      rank: rank ?? null,
      score: current === null ? null : parseScore(current),
      personalBest: personalBest === 1,
      previousBest: previous === null ? null : parseScore(previous),
    };
  }

  /**
   * The best `n` entries (at most 1000) starting at 0-based position `offset`, best first.
   * @throws LeaderboardInputError for an empty or over-long board or member, or a wrong argument or option.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const podium = await boards.top('tetris', 3); // [{ member, score, rank }, ...]
   */
  async top(board: string, n: number, offset = 0, options?: LeaderboardReadOptions): Promise<LeaderboardEntry[]> {
    const keys = this.boardKeys(board, TOP);
    checkInteger(n, 'n', TOP, 1, MAX_READ_ENTRIES, 'argument');
    checkInteger(offset, 'offset', TOP, 0, Number.MAX_SAFE_INTEGER, 'argument');
    const reply = await this.rangeScript.run([keys.scores, keys.config], [orderArg(options, TOP), 'top', offset, n]);
    return toEntries(reply);
  }

  /**
   * The member's entry with up to `radius` entries on each side (fewer at the ends of the board), best
   * first; empty when the member is not on the board.
   * @throws LeaderboardInputError for an empty or over-long board or member, or a wrong argument or option.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const nearMe = await boards.around('tetris', 'ada', 2);
   */
  async around(board: string, member: string, radius: number, options?: LeaderboardReadOptions): Promise<LeaderboardEntry[]> {
    const keys = this.boardKeys(board, AROUND);
    checkMember(member, AROUND);
    checkInteger(radius, 'radius', AROUND, 0, Math.floor((MAX_READ_ENTRIES - 1) / 2), 'argument');
    const reply = await this.rangeScript.run([keys.scores, keys.config], [orderArg(options, AROUND), 'around', member, radius]);
    return toEntries(reply);
  }

  /**
   * The member's competition rank, or `null` when it is not on the board.
   * @throws LeaderboardInputError for an empty or over-long board or member, or a wrong argument or option.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const rank = await boards.rank('tetris', 'ada'); // 1 = best
   */
  async rank(board: string, member: string, options?: LeaderboardReadOptions): Promise<number | null> {
    const keys = this.boardKeys(board, RANK);
    checkMember(member, RANK);
    const reply = await this.entryScript.run([keys.scores, keys.config], [member, orderArg(options, RANK)]);
    return reply === null ? null : reply[0];
  }

  /**
   * The member's board score, or `null` when it is not on the board.
   * @throws LeaderboardInputError for an empty or over-long board or member, or a wrong argument or option.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const score = await boards.score('tetris', 'ada');
   */
  async score(board: string, member: string): Promise<number | null> {
    const keys = this.boardKeys(board, SCORE);
    checkMember(member, SCORE);
    const score = await this.engine.read<string | null>('LeaderboardService.score', 'zscore', [keys.scores, member]);
    return score === null ? null : parseScore(score);
  }

  /**
   * The member's last `n` submitted scores (default and at most 1000), newest first.
   * @throws LeaderboardInputError for an empty or over-long board or member, or a wrong argument or option.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const last10 = await boards.history('tetris', 'ada', 10); // [{ at, score }, ...]
   */
  async history(board: string, member: string, n = MAX_READ_ENTRIES): Promise<LeaderboardHistoryEntry[]> {
    checkBoard(board, HISTORY);
    checkMember(member, HISTORY);
    checkInteger(n, 'n', HISTORY, 1, MAX_READ_ENTRIES, 'argument');
    const historyKey = this.historyKey(board, member);
    const rows = await this.engine.read<string[]>('LeaderboardService.history', 'lrange', [historyKey, 0, n - 1]);
    return rows.map((row) => {
      const colon = row.indexOf(':');
      return { at: Number(row.slice(0, colon)), score: parseScore(row.slice(colon + 1)) };
    });
  }

  /**
   * How many entries the board holds.
   * @throws LeaderboardInputError for an empty or over-long board or member, or a wrong argument or option.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const players = await boards.count('tetris');
   */
  async count(board: string): Promise<number> {
    const { scores } = this.boardKeys(board, COUNT);
    return this.engine.read<number>('LeaderboardService.count', 'zcard', [scores]);
  }

  /**
   * Removes the member from the board and deletes its history. True if there was anything to remove.
   * @throws LeaderboardInputError for an empty or over-long board or member, or a wrong argument or option.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * await boards.remove('tetris', 'cheater');
   */
  async remove(board: string, member: string): Promise<boolean> {
    const keys = this.boardKeys(board, REMOVE);
    checkMember(member, REMOVE);
    const removed = await this.removeScript.run([keys.scores, this.historyKey(board, member), keys.histories], [member]);
    return removed === 1;
  }

  /**
   * Deletes every entry and every member's history of the board (its stored configuration stays).
   * Returns how many entries the board had. One script, O(members with a history).
   * @throws LeaderboardInputError for an empty or over-long board or member, or a wrong argument or option.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const removed = await boards.reset('season-1');
   */
  async reset(board: string): Promise<number> {
    const keys = this.boardKeys(board, RESET);
    return this.resetScript.run([keys.scores, keys.histories]);
  }

  private boardKeys(board: string, site: InputSite): BoardKeys {
    checkBoard(board, site);
    return {
      scores: this.keys.key(FEATURE, [board], 'scores'),
      config: this.keys.key(FEATURE, [board], 'config'),
      histories: this.keys.key(FEATURE, [board], 'histories'),
    };
  }

  private historyKey(board: string, member: string): string {
    return this.keys.key(FEATURE, [board], 'h', member);
  }
}

/** `[member, score, rank, ...]` from the range script → entries. */
function toEntries(reply: Array<string | number>): LeaderboardEntry[] {
  const entries: LeaderboardEntry[] = [];
  for (let i = 0; i < reply.length; i += 3) {
    entries.push({ member: String(reply[i]), score: parseScore(String(reply[i + 1])), rank: Number(reply[i + 2]) });
  }
  return entries;
}
