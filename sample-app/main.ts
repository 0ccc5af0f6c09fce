import 'reflect-metadata';
import { type INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RateLimitMiddleware } from 'nest-redis-lua';
import { AppModule } from './app.module';

/**
 * What main.ts does to the application before it listens (the e2e tests do the same): installs
 * RateLimitMiddleware ahead of Nest, which answers a client that `GET /hello` (earlyDeny) denied.
 */
export function configureApp(app: INestApplication): void {
  RateLimitMiddleware.install(app);
}

/** Requests to try, printed at startup. */
export function tryLines(base: string): string[] {
  const json = `-H 'content-type: application/json'`;
  return [
    `curl ${base}/hello                                   # 5 per 10 s per IP, then 429 (answered before Nest)`,
    `curl -X POST ${base}/login ${json} -d '{"username":"alice","password":"wonderland"}'   # 5 failures/min + 20/hour per IP+user`,
    `curl -X PUT ${base}/inventory/widget ${json} -d '{"stock":3}'`,
    `curl -X POST ${base}/inventory/widget/reserve ${json} -d '{"quantity":1}'   # under a lock; never below 0`,
    `curl -X POST ${base}/games/tetris/scores ${json} -d '{"player":"ada","score":4200}'`,
    `curl '${base}/games/tetris/leaderboard?top=10'`,
    `curl ${base}/games/tetris/players/ada`,
    `curl ${base}/products/42                             # slow the first time, then cached; misses wait for the catalog's 5/s`,
    `curl -X POST ${base}/pages/home/views                # a custom Lua script (forFeature)`,
    `curl ${base}/health`,
    `curl ${base}/metrics                                 # OpenTelemetry metrics (Prometheus format): decisions, lock waits, ...`,
  ];
}

/**
 * Starts the sample app on PORT (default 3000) and prints the URL and a few requests to try.
 * With `shutdownHooks` (the default) Nest closes the app on SIGINT/SIGTERM; `run-sample` handles the
 * signals itself, because it also has a redis-server to stop.
 */
export async function bootstrap(port = Number(process.env.PORT ?? 3000), { shutdownHooks = true } = {}): Promise<() => Promise<void>> {
  const app = await NestFactory.create(AppModule);
  configureApp(app);
  if (shutdownHooks) app.enableShutdownHooks();
  await app.listen(port, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  new Logger('Sample').log(
    [`nest-redis-lua sample app listening on ${base}`, 'Try:', ...tryLines(base).map((line) => `  ${line}`)].join('\n'),
  );
  return () => app.close();
}

if (require.main === module) {
  bootstrap().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
