import { checkChoice, checkInteger, checkText, type InputSite } from '../core/validation';

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

/** A board name: a non-empty string of at most {@link MAX_BOARD_BYTES} UTF-8 bytes. */
export function checkBoard(value: unknown, site: InputSite): string {
  return checkText(value, 'board', site, { maxBytes: MAX_BOARD_BYTES });
}

/** A member name: a non-empty string of at most {@link MAX_MEMBER_BYTES} UTF-8 bytes. */
export function checkMember(value: unknown, site: InputSite): string {
  return checkText(value, 'member', site, { maxBytes: MAX_MEMBER_BYTES });
}

/** Board settings as script arguments: `[order, maxEntries, historyLength]`, `''` where not given. */
export function configArgs(config: LeaderboardConfig, site: InputSite): [string, string, string] {
  const { order, maxEntries, historyLength } = config;
  return [
    order === undefined ? '' : checkChoice(order, 'order', site, ORDERS),
    maxEntries === undefined ? '' : String(checkInteger(maxEntries, 'maxEntries', site, 1, Number.MAX_SAFE_INTEGER)),
    historyLength === undefined ? '' : String(checkInteger(historyLength, 'historyLength', site, 0, MAX_HISTORY_LENGTH)),
  ];
}

/** The submit mode, checked (default `best`). */
export function checkMode(mode: unknown, site: InputSite): SubmitMode {
  return mode === undefined ? 'best' : checkChoice(mode, 'mode', site, MODES);
}

/** The order override of a read, as a script argument (`''` = the board's stored order). */
export function orderArg(options: LeaderboardReadOptions | undefined, site: InputSite): string {
  return options?.order === undefined ? '' : checkChoice(options.order, 'order', site, ORDERS);
}

/** Parses a score as Redis formats it (`inf` and `-inf` included). */
export function parseScore(text: string): number {
  if (text === 'inf' || text === '+inf') return Infinity;
  if (text === '-inf') return -Infinity;
  return Number(text);
}
