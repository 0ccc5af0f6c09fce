import { Body, Controller, Param, Post } from '@nestjs/common';
import { LeaderboardService, type SubmitResult } from 'nest-redis-lua';

interface ScoreBody {
  player: string;
  score: number;
}

@Controller('boards')
export class ScoresController {
  constructor(private readonly leaderboard: LeaderboardService) {}

  /** Keeps each player's best score; answers the player's rank and whether this was a personal best. */
  @Post(':board/scores')
  submit(@Param('board') board: string, @Body() body: ScoreBody): Promise<SubmitResult> {
    return this.leaderboard.submit(board, body.player, body.score);
  }
}
