import { BadRequestException, Body, Controller, HttpCode, Post, UnauthorizedException, UseGuards } from '@nestjs/common';
import { RateLimit, RateLimitGuard } from 'nest-redis-lua';
import { AuthService } from './auth.service';
import { loginAttemptKey } from './login-key';

interface LoginBody {
  username?: unknown;
  password?: unknown;
}

/**
 * `POST /login`: two rules checked and recorded together (5 per minute and 20 per hour) per
 * IP + username. Only failed attempts count (`countOnly: 'failed'`: wrong passwords, bad bodies); a
 * right password is given back once answered. The 6th failure within a minute gets 429.
 */
@Controller()
@UseGuards(RateLimitGuard)
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Post('login')
  @HttpCode(200)
  @RateLimit({
    rules: [
      { limit: 5, windowMs: 60_000, name: 'per-minute' },
      { limit: 20, windowMs: 3_600_000, name: 'per-hour' },
    ],
    key: loginAttemptKey,
    countOnly: 'failed',
  })
  login(@Body() body: LoginBody): { username: string; token: string } {
    if (typeof body?.username !== 'string' || typeof body.password !== 'string') {
      throw new BadRequestException('username and password are required strings');
    }
    const token = this.auth.login(body.username, body.password);
    if (token === null) throw new UnauthorizedException('wrong username or password');
    return { username: body.username, token };
  }
}
