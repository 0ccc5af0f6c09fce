import { LeaderboardInputError } from './leaderboard.errors';

/** Which scores rank first: `desc` = higher is better (points), `asc` = lower is better (lap times). */
export type LeaderboardOrder = 'desc' | 'asc';

/**
 * How {@link LeaderboardService.submit} applies a score: `best` keeps the better of the old and new
 * score, `latest` overwrites, `increment` adds the submitted score to the member's score.
 */
export type SubmitMode = 'best' | 'latest' | 'increment';

/** A board's settings, stored in Redis by {@link LeaderboardService.configure} so every instance agrees. */
export interface LeaderboardConfig {
  /** Default `desc`. */
  order?: LeaderboardOrder;
  /** Keep at most this many entries (integer >= 1); the worst are removed on submit. Default: unlimited. */
  maxEntries?: number;
  /** Keep the last N submitted scores per member (integer from 0 to 10000, 0 = no history). Default 100. */
  historyLength?: number;
}

/** Options of {@link LeaderboardService.submit}: the mode, and board settings that override the stored ones for this call. */
export interface SubmitOptions extends LeaderboardConfig {
  /** Default `best`. */
  mode?: SubmitMode;
}

/** Options of the reads that rank: override the board's stored order for this call. */
export interface LeaderboardReadOptions {
  order?: LeaderboardOrder;
}

/** What {@link LeaderboardService.submit} reports. */
export interface SubmitResult {
  /** Competition rank (1, 2, 2, 4) after the submit; `null` when the member is not on the board (trimmed off). */
  rank: number | null;
  /** The member's board score after the submit; `null` when not on the board. */
  score: number | null;
  /** True when the member is on the board and its score improved, or it just entered the board. */
  personalBest: boolean;
  /** The member's board score before the submit; `null` if it was not on the board. */
  previousBest: number | null;
}

/** One ranked entry of a board. */
export interface LeaderboardEntry {
  member: string;
  score: number;
  /** Competition rank: equal scores share a rank, the next rank skips (1, 2, 2, 4). */
  rank: number;
}

/** One submitted score in a member's history. */
export interface LeaderboardHistoryEntry {
  /** The score as submitted (for `increment`, the amount added). */
  score: number;
  /** When it was submitted, in ms since the epoch (Redis server time). */
  at: number;
}

/** Longest member name, in UTF-8 bytes. */
export const MAX_MEMBER_BYTES = 512;
/** Longest board name, in UTF-8 bytes. */
export const MAX_BOARD_BYTES = 512;
/** Longest history kept per member. */
export const MAX_HISTORY_LENGTH = 10_000;
/** Most entries one read (`top`, `history`, `around` with both sides) returns: reads stay O(small). */
export const MAX_READ_ENTRIES = 1000;

const ORDERS: readonly LeaderboardOrder[] = ['desc', 'asc'];
const MODES: readonly SubmitMode[] = ['best', 'latest', 'increment'];

/** Checks a board or member name: a non-empty string of at most `maxBytes` UTF-8 bytes. */
export function checkName(field: 'board' | 'member', value: unknown, maxBytes: number): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new LeaderboardInputError(field, `${field} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) {
    throw new LeaderboardInputError(field, `${field} must be at most ${maxBytes} bytes (UTF-8), got ${bytes}`);
  }
  return value;
}

/** Checks a score: a finite number. */
export function checkScore(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new LeaderboardInputError('score', `score must be a finite number, got ${String(value)}`);
  }
  return value;
}

/** Checks an integer argument or option within [min, max]. */
export function checkInteger(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new LeaderboardInputError(field, `${field} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function checkChoice<T extends string>(field: string, value: unknown, choices: readonly T[]): T {
  if (!choices.includes(value as T)) {
    throw new LeaderboardInputError(
      field,
      `${field} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** Board settings as script arguments: `[order, maxEntries, historyLength]`, `''` where not given. */
export function configArgs(config: LeaderboardConfig): [string, string, string] {
  const { order, maxEntries, historyLength } = config;
  return [
    order === undefined ? '' : checkChoice('order', order, ORDERS),
    maxEntries === undefined ? '' : String(checkInteger('maxEntries', maxEntries, 1)),
    historyLength === undefined ? '' : String(checkInteger('historyLength', historyLength, 0, MAX_HISTORY_LENGTH)),
  ];
}

/** The submit mode, checked (default `best`). */
export function checkMode(mode: unknown = 'best'): SubmitMode {
  return checkChoice('mode', mode, MODES);
}

/** The order override of a read, as a script argument (`''` = the board's stored order). */
export function orderArg(options: LeaderboardReadOptions = {}): string {
  return options.order === undefined ? '' : checkChoice('order', options.order, ORDERS);
}

/** Parses a score as Redis formats it (`inf` and `-inf` included). */
export function parseScore(text: string): number {
  if (text === 'inf' || text === '+inf') return Infinity;
  if (text === '-inf') return -Infinity;
  return Number(text);
}
