/**
 * Which build of the library the bench measures. By default the source (`lib/`, compiled on the fly).
 * With BENCH_FROM_TARBALL=1, the published build: `npm pack` (which runs `prepare`, the build), the
 * tarball extracted as `node_modules/nest-redis-lua` under `.tmp/bench-tarball/` (its dependencies and
 * peers resolve to this repository's node_modules, the same copies the bench and the peers use), and
 * every import of `lib/index.ts` resolved to the package's entry point instead — what an app that
 * installed the tarball loads. Imported first by bench/run.ts, before anything loads the library.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import Module from 'node:module';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** The library the bench loads, for the report: `source (lib/)` or the tarball's file name. */
export const librarySource: string = process.env.BENCH_FROM_TARBALL ? fromTarball() : 'source (lib/)';

function fromTarball(): string {
  const dir = join(ROOT, '.tmp', 'bench-tarball');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
  const file = packed.trim().split('\n').pop()!;
  execFileSync('tar', ['-xzf', join(dir, file), '-C', dir]);
  const installed = join(dir, 'node_modules', 'nest-redis-lua');
  renameSync(join(dir, 'package'), installed);
  const entry = require.resolve(installed);
  const source = join(ROOT, 'lib', 'index.ts');
  const resolver = Module as unknown as { _resolveFilename(request: string, ...rest: unknown[]): string };
  const resolve = resolver._resolveFilename;
  resolver._resolveFilename = function (request: string, ...rest: unknown[]): string {
    const resolved = resolve.call(this, request, ...rest);
    return resolved === source ? entry : resolved;
  };
  return `the npm pack tarball ${file}, installed`;
}
