import { Injectable } from '@nestjs/common';
import { randomBytes, timingSafeEqual } from 'node:crypto';

/** A stand-in for a real user store: one demo account, `alice` / `wonderland`. */
@Injectable()
export class AuthService {
  private readonly users = new Map([['alice', 'wonderland']]);

  /** A session token for the right password, `null` otherwise. */
  login(username: string, password: string): string | null {
    const expected = this.users.get(username.toLowerCase());
    if (expected === undefined || !sameText(expected, password)) return null;
    return randomBytes(16).toString('hex');
  }
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
