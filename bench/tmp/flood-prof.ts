import 'reflect-metadata';
import { RedisServer } from '../../test/harness/redis-server';
import { httpApp } from '../suites/http';
import { runLoads } from '../harness/load';
async function main(): Promise<void> {
  const server = await RedisServer.start();
  const { app, url, storage } = await httpApp(server.port);
  await runLoads([{ url: `${url}/limited`, connections: 32, seconds: 1, requests: [{ method: 'GET', headers: { 'x-user': 'flooder' } }] }]);
  const cpu = process.cpuUsage();
  const [r] = await runLoads([{ url: `${url}/limited`, connections: 32, seconds: 4, requests: [{ method: 'GET', headers: { 'x-user': 'flooder' } }] }]);
  const used = process.cpuUsage(cpu);
  console.log('flood', Math.round(r.average), 'req/s', ((used.user + used.system) / r.total).toFixed(1), 'µs/req');
  await app.close(); storage.disconnect(); await server.destroy();
}
main().then(() => process.exit(), (e: unknown) => { console.error(e); process.exit(1); });
