import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';

/** Starts the sample app on PORT (default 3000) and prints a few requests to try. */
export async function bootstrap(port = Number(process.env.PORT ?? 3000)): Promise<() => Promise<void>> {
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  await app.listen(port, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  new Logger('Sample').log(
    [`nest-redis-lua sample app listening on ${base}`, 'Try:', `  curl -X POST ${base}/pages/home/views`].join('\n'),
  );
  return () => app.close();
}

if (require.main === module) {
  bootstrap().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
