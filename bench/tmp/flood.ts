import 'reflect-metadata';
import { RedisServer } from '../../test/harness/redis-server';
import { httpApp } from '../suites/http';
import { runLoads } from '../harness/load';

async function main(): Promise<void> {
  const server = await RedisServer.start();
  const { app, url, storage } = await httpApp(server.port);
  let run = 0;
  const users = (path: string) => { run++; return Array.from({ length: 100 }, (_, i) => ({ method: 'GET' as const, path, headers: { 'x-user': `r${run}-u${i}` } })); };
  const flooder = (shortcut: boolean) => [{ method: 'GET' as const, headers: shortcut ? { 'x-user': 'flooder', 'x-bench-shortcut': '1' } : { 'x-user': 'flooder' } }];
  await runLoads([{ url: `${url}/limited`, connections: 32, seconds: 1, requests: flooder(false) }]);
  const s = 3;
  for (let round = 0; round < 3; round++) {
    const only = async (name: string, path: string, reqs: any) => { const [r] = await runLoads([{ url: `${url}${path}`, connections: 32, seconds: s, requests: reqs }]); console.log(name, Math.round(r.average)); };
    const pair = async (name: string, path: string, fl: any) => { const [a, b] = await runLoads([{ url: `${url}${path}`, connections: 32, seconds: s, requests: users(path) }, { url: `${url}${path}`, connections: 32, seconds: s, requests: fl }]); console.log(name, Math.round(a.average), 'flood', Math.round(b.average)); };
    await only('flooder alone, guard 429', '/limited', flooder(false));
    await only('flooder alone, middleware 429', '/limited', flooder(true));
    await only('open alone 200', '/open', users('/open'));
    await pair('limited users + guard-429 flood', '/limited', flooder(false));
    await pair('limited users + middleware-429 flood', '/limited', flooder(true));
    await pair('open users + served flood', '/open', [{ method: 'GET', headers: { 'x-user': 'flooder' } }]);
    await pair('open users + middleware-429 flood', '/open', flooder(true));
  }
  await app.close(); storage.disconnect(); await server.destroy();
}
main().then(() => process.exit(), (e: unknown) => { console.error(e); process.exit(1); });
