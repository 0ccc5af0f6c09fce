import { Body, Controller, Post, UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import { RateLimit } from 'nest-redis-lua';

const usernameOf = (ctx: ExecutionContext): string =>
  String(ctx.switchToHttp().getRequest<{ body?: { username?: unknown } }>().body?.username);

@Controller('login')
export class LoginController {
  /** As the README shows it: only failed attempts count; the 3rd failure within a minute blocks for 10 minutes. */
  @Post()
  @RateLimit({ limit: 2, windowMs: 60_000, blockMs: 600_000, countOnly: 'failed', key: usernameOf })
  login(@Body() body: { username: string; password: string }): { ok: true } {
    if (body.password !== 'wonderland') throw new UnauthorizedException();
    return { ok: true };
  }
}
