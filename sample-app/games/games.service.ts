import { Injectable } from '@nestjs/common';
import { LeaderboardService, type LeaderboardEntry, type LeaderboardHistoryEntry, type SubmitResult } from 'nest-redis-lua';

/** A player's page: standing, neighbours on the board and recent scores. */
export interface PlayerStanding {
  player: string;
  rank: number | null;
  score: number | null;
  around: LeaderboardEntry[];
  history: LeaderboardHistoryEntry[];
}

/** One leaderboard per game, higher is better, each player's best score kept. */
@Injectable()
export class GamesService {
  constructor(private readonly boards: LeaderboardService) {}

  submit(game: string, player: string, score: number): Promise<SubmitResult> {
    return this.boards.submit(`game:${game}`, player, score, { mode: 'best' });
  }

  top(game: string, n: number): Promise<LeaderboardEntry[]> {
    return this.boards.top(`game:${game}`, n);
  }

  /** `null` when the player never submitted a score to this game. */
  async player(game: string, player: string): Promise<PlayerStanding | null> {
    const board = `game:${game}`;
    const [rank, score, around, history] = await Promise.all([
      this.boards.rank(board, player),
      this.boards.score(board, player),
      this.boards.around(board, player, 2),
      this.boards.history(board, player, 10),
    ]);
    if (score === null && history.length === 0) return null;
    return { player, rank, score, around, history };
  }
}
