import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RateLimitMiddleware } from 'nest-redis-lua';
import { AppModule } from './app.module.js';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  // SIGTERM / SIGINT run the shutdown hooks (RedisClientShutdown quits the client), then exit.
  app.enableShutdownHooks();
  // Ahead of Nest's parsers and router: answers the clients an earlyDeny route has denied.
  RateLimitMiddleware.install(app);
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port, '127.0.0.1');
  new Logger('Bootstrap').log(`fresh app listening on http://127.0.0.1:${port}`);
}
await bootstrap();
