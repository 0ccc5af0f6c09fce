import { BadRequestException, type ExecutionContext } from '@nestjs/common';
import { clientIdentity } from 'nest-redis-lua';

interface LoginRequest {
  ip?: string;
  body?: { username?: unknown };
}

/**
 * The rate-limit identifier of a login attempt: the client's IP and the username it tries, so one
 * address guessing one account is stopped without locking the account out for everybody else.
 */
export function loginAttemptKey(context: ExecutionContext): string {
  const request = context.switchToHttp().getRequest<LoginRequest>();
  const username = typeof request.body?.username === 'string' ? request.body.username.toLowerCase() : '';
  const ip = request.ip === undefined ? undefined : clientIdentity(request.ip);
  if (ip === undefined) throw new BadRequestException('The client address is unknown');
  // An IP identity never holds "|": the key splits back into one address and one username.
  return `${ip}|${username}`;
}
