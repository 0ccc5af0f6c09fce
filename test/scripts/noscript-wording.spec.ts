/**
 * NOSCRIPT is recognised by its error code alone: Valkey 8 shortened the message Redis gives
 * ("NOSCRIPT No matching script. Please use EVAL.") to "NOSCRIPT No matching script." (valkey#1537),
 * which broke clients that matched the whole text. redis-server 7.0 cannot be made to say it, so a
 * tiny RESP server plays a server with that wording: it answers the handshake, SCRIPT LOAD, and
 * EVALSHA with a chosen error, and counts what it received.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { InjectScript, LuaScriptError, RedisLuaModule, type LuaScript } from 'nest-redis-lua';

const SCRIPT = { name: 'wording-probe', lua: 'return 7', numberOfKeys: 1 };

class Probe {
  constructor(@InjectScript(SCRIPT.name) readonly script: LuaScript<number>) {}
}

/** A server that replies to EVALSHA with `evalshaError` and to EVAL with 7. */
class FakeServer {
  readonly received: string[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly evalshaError: string) {
    this.server = createServer((socket) => this.serve(socket));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const parsed = parseCommand(buffer);
        if (!parsed) return;
        buffer = buffer.subarray(parsed.length);
        socket.write(this.reply(parsed.args));
        if (parsed.args[0].toUpperCase() === 'QUIT') socket.end();
      }
    });
    socket.on('error', () => undefined);
  }

  private reply(args: string[]): string {
    const name = args[0].toUpperCase();
    this.received.push(name === 'SCRIPT' ? `SCRIPT ${args[1].toUpperCase()}` : name);
    switch (name) {
      case 'PING':
        return '+PONG\r\n';
      case 'INFO':
        return bulk('# Server\r\nredis_version:8.0.2\r\nloading:0\r\n');
      case 'SCRIPT':
        return bulk(createHash('sha1').update(args[2]).digest('hex'));
      case 'EVALSHA':
        return `-${this.evalshaError}\r\n`;
      case 'EVAL':
        return ':7\r\n';
      case 'CLIENT':
      case 'SELECT':
      case 'QUIT':
        return '+OK\r\n';
      default:
        return `-ERR unknown command '${args[0]}'\r\n`;
    }
  }
}

function bulk(text: string): string {
  return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
}

/** One RESP array of bulk strings from the start of `buffer`, or undefined if it is not complete yet. */
function parseCommand(buffer: Buffer): { args: string[]; length: number } | undefined {
  const text = buffer.toString('latin1');
  let at = text.indexOf('\r\n');
  if (text[0] !== '*' || at === -1) return undefined;
  const count = Number(text.slice(1, at));
  let offset = at + 2;
  const args: string[] = [];
  for (let i = 0; i < count; i++) {
    at = text.indexOf('\r\n', offset);
    if (at === -1) return undefined;
    const size = Number(text.slice(offset + 1, at));
    const start = at + 2;
    if (buffer.length < start + size + 2) return undefined;
    args.push(buffer.subarray(start, start + size).toString('utf8'));
    offset = start + size + 2;
  }
  return { args, length: offset };
}

describe('NOSCRIPT by its code, whatever its wording', () => {
  let fake: FakeServer;
  let app: INestApplicationContext;

  const boot = async (evalshaError: string): Promise<LuaScript<number>> => {
    fake = new FakeServer(evalshaError);
    const port = await fake.listen();
    @Module({
      imports: [RedisLuaModule.forRoot({ url: `redis://127.0.0.1:${port}` }), RedisLuaModule.forFeature([SCRIPT])],
      providers: [Probe],
    })
    class AppModule {}
    app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    return app.get(Probe).script;
  };
  afterEach(async () => {
    await app?.close();
    await fake?.close();
  });

  it.each(['NOSCRIPT No matching script.', 'NOSCRIPT No matching script. Please use EVAL.', 'NOSCRIPT'])(
    '"%s": the call is sent once more as EVAL, and succeeds',
    async (wording) => {
      const script = await boot(wording);
      fake.received.length = 0;
      expect(await script.run(['k'])).toBe(7);
      expect(fake.received.filter((c) => c.startsWith('EVAL'))).toEqual(['EVALSHA', 'EVAL']);
    },
  );

  it.each(['NOSCRIPTS No matching script.', 'ERR NOSCRIPT No matching script.', 'BUSY NOSCRIPT'])(
    '"%s" is not NOSCRIPT: no EVAL, the error stands',
    async (wording) => {
      const script = await boot(wording);
      fake.received.length = 0;
      const err = await script.run(['k']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(wording.startsWith('BUSY') ? Error : LuaScriptError);
      expect((err as Error).message).toContain(wording);
      expect(fake.received.filter((c) => c.startsWith('EVAL'))).toEqual(['EVALSHA']);
    },
  );
});
