import type { ClusterAddress } from './redis-server';

/** The environment variable through which global setup hands the servers' addresses to the tests. */
export const HARNESS_ENV = 'NRL_TEST_REDIS';

export interface HarnessAddresses {
  standalone: ClusterAddress;
  cluster: ClusterAddress[];
}

export function harnessAddresses(): HarnessAddresses {
  const raw = process.env[HARNESS_ENV];
  if (!raw) throw new Error(`${HARNESS_ENV} is not set: run the tests through jest (npm test), whose global setup starts Redis`);
  return JSON.parse(raw) as HarnessAddresses;
}

/**
 * `NRL_TEST_SCRIPTS=functions` runs the suites in functions mode: {@link harnessScripts} is what
 * `t.connection()` adds to every app's options (test/compat runs some version sets this way).
 */
export const SCRIPTS_ENV = 'NRL_TEST_SCRIPTS';

/** The script mode of this run: `{ scripts: 'functions' }`, or nothing (the default, EVAL). */
export function harnessScripts(): { scripts?: 'functions' } {
  const mode = process.env[SCRIPTS_ENV];
  if (mode === undefined || mode === '' || mode === 'eval') return {};
  if (mode === 'functions') return { scripts: 'functions' };
  throw new Error(`${SCRIPTS_ENV} must be eval or functions, got "${mode}"`);
}
