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
