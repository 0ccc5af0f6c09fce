/**
 * The HTTP load generator, run as a child process of the bench so that the server process is
 * measured alone (autocannon in the server's own process would share its event loop and CPU).
 *
 * Protocol: argv[2] is a JSON `autocannon` options object (url, connections, duration, requests).
 * The child loads autocannon, writes `ready` on stdout, waits for a line on stdin (the start signal,
 * so that concurrent generators start together), runs, and writes one JSON line:
 * `{ "average": req/s, "total": requests, "non2xx": n, "errors": n }`.
 */
'use strict';
const autocannon = require('autocannon');

const options = JSON.parse(process.argv[2]);
process.stdout.write('ready\n');
process.stdin.once('data', () => {
  process.stdin.pause();
  autocannon(options, (err, result) => {
    if (err) {
      process.stderr.write(`${err.stack ?? err}\n`);
      process.exit(1);
    }
    const line = { average: result.requests.average, total: result.requests.total, non2xx: result.non2xx, errors: result.errors };
    process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(0));
  });
});
