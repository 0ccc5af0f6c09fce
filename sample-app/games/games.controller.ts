import { BadRequestException, Body, Controller, Get, NotFoundException, Param, Post, Query, UseFilters } from '@nestjs/common';
import type { LeaderboardEntry, SubmitResult } from 'nest-redis-lua';
import { InputErrorFilter } from '../common/input-error.filter';
import { GamesService, type PlayerStanding } from './games.service';

interface ScoreBody {
  player?: unknown;
  score?: unknown;
}

/** Leaderboards: submit scores, read the top, a player's rank, neighbours and history. */
@Controller('games/:game')
@UseFilters(InputErrorFilter)
export class GamesController {
  constructor(private readonly games: GamesService) {}

  /** `POST /games/:game/scores` `{ "player": "ada", "score": 4200 }` → rank, personal best. */
  @Post('scores')
  submit(@Param('game') game: string, @Body() body: ScoreBody): Promise<SubmitResult> {
    if (typeof body?.player !== 'string' || typeof body.score !== 'number') {
      throw new BadRequestException('player (string) and score (number) are required');
    }
    return this.games.submit(game, body.player, body.score);
  }

  /** `GET /games/:game/leaderboard?top=10` → `[{ member, score, rank }]`, best first. */
  @Get('leaderboard')
  leaderboard(@Param('game') game: string, @Query('top') top = '10'): Promise<LeaderboardEntry[]> {
    const n = Number(top);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new BadRequestException('top must be an integer from 1 to 100');
    return this.games.top(game, n);
  }

  /** `GET /games/:game/players/:id` → rank, score, the players around, the last 10 scores. */
  @Get('players/:id')
  async player(@Param('game') game: string, @Param('id') id: string): Promise<PlayerStanding> {
    const standing = await this.games.player(game, id);
    if (!standing) throw new NotFoundException(`no score for player "${id}" in game "${game}"`);
    return standing;
  }
}
