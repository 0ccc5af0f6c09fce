/**
 * Loaded in every test file (jest setupFilesAfterEnv): an unhandled promise rejection anywhere —
 * a library timer, a watchdog, a late Redis reply — fails the test during which it surfaced
 * (or the file, if it surfaced after the last test).
 */
const rejections: unknown[] = [];
const record = (reason: unknown): void => {
  rejections.push(reason);
};

process.on('unhandledRejection', record);

function assertNone(when: string): void {
  const found = rejections.splice(0);
  if (found.length > 0) {
    const reasons = found.map((r) => (r instanceof Error ? (r.stack ?? r.message) : String(r))).join('\n---\n');
    throw new Error(`${found.length} unhandled promise rejection(s) ${when}:\n${reasons}`);
  }
}

afterEach(() => assertNone('during this test'));
afterAll(() => {
  process.off('unhandledRejection', record);
  assertNone('after the last test of this file');
});
