import { join } from 'node:path';
import { runTsChild } from '../harness/child-process';
import { harnessAddresses } from '../harness/harness-env';

const APP = join(__dirname, '..', 'fixtures', 'lifecycle-app.ts');

describe('app.close() leaves nothing open', () => {
  const { standalone, cluster } = harnessAddresses();

  it.each([
    ['standalone', { url: `redis://${standalone.host}:${standalone.port}` }],
    ['cluster', { cluster: { nodes: cluster } }],
    ['lazyConnect without Redis', { url: 'redis://127.0.0.1:1', lazyConnect: true }],
  ])('%s: the process exits by itself after close', async (_name, options) => {
    const result = await runTsChild(APP, [JSON.stringify(options)], 15_000);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^closed \d+\n$/);
    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(0);
  });
});
