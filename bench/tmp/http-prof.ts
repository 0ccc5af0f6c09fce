import 'reflect-metadata';
import { RedisServer } from '../../test/harness/redis-server';
import { httpApp } from '../suites/http';
import { runLoads } from '../harness/load';

async function main(): Promise<void> {
  const route = process.argv[2] ?? 'limited';
  const server = await RedisServer.start();
  const { app, url, storage } = await httpApp(server.port);
  let u = 0;
  const requests = [{ method: 'GET' as const, setupRequest: undefined as never, headers: { 'x-user': `u${u++}` } }];
  const cpu = process.cpuUsage();
  const [r] = await runLoads([{ url: `${url}/${route}`, connections: 32, seconds: Number(process.argv[3] ?? 5), requests: Array.from({ length: 100 }, (_, i) => ({ method: 'GET' as const, headers: { 'x-user': `p${process.pid}-${i}` } })) }]);
  const used = process.cpuUsage(cpu);
  console.log(route, Math.round(r.average), 'req/s', ((used.user + used.system) / r.total).toFixed(1), 'µs server CPU/req', 'non2xx', r.non2xx);
  await app.close();
  storage.disconnect();
  await server.destroy();
}
main().then(() => process.exit(), (e: unknown) => { console.error(e); process.exit(1); });
