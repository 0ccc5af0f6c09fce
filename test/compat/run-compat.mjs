#!/usr/bin/env node
/**
 * `npm run test:compat`: the whole suite against each older supported version set, one after another.
 * A set is a folder of test/compat/ holding `versions.json` (exact versions of NestJS, ioredis and
 * the Nest packages the tests use, and optionally `"scripts": "functions"`: the script mode the
 * suites run in) and `package-lock.json` (the rest of the tree, pinned).
 *
 * For each set it copies the working tree (without node_modules and build output) into a scratch
 * folder outside the repository, writes a package.json whose devDependencies are the repository's
 * with the set's versions in their place, installs the pinned tree (`npm ci`, from the npm registry),
 * checks that exactly the pinned versions were installed, then type-checks and runs jest there.
 * Suites that use none of the repository's installed versions (VERSION_INDEPENDENT) are not run
 * again for a set.
 *
 *   npm run test:compat                                  # every set: type-check + every suite
 *   npm run test:compat -- --set nest11-ioredis5 test/lock   # one set, some suites (jest arguments)
 *   npm run test:compat -- --update-lock                 # re-resolve each set's package-lock.json, then run
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
/** Never copied into a scratch folder: installed or built there, or irrelevant to the tests. */
const SKIP = new Set(['node_modules', 'dist', 'dist-sample', '.git', 'coverage', '.tmp']);
/**
 * Suites that do not depend on the repository's installed versions, so each set skips them:
 * fresh-apps.spec.ts installs the tarball into Nest apps with their own NestJS and ioredis from the
 * registry (a tarball built against a set's types is not what npm publish ships).
 */
const VERSION_INDEPENDENT = ['/test/packaging/fresh-apps\\.spec\\.ts$'];
const ALL_SETS = readdirSync(HERE)
  .filter((entry) => existsSync(join(HERE, entry, 'versions.json')))
  .sort();

const { sets, updateLock, jestArgs } = parseArgs(process.argv.slice(2));

function parseArgs(argv) {
  const parsed = { sets: [], updateLock: false, jestArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--update-lock') parsed.updateLock = true;
    else if (argv[i] === '--set') parsed.sets.push(argv[++i]);
    else parsed.jestArgs.push(argv[i]);
  }
  for (const set of parsed.sets) if (!ALL_SETS.includes(set)) fail(`unknown set "${set}" (sets: ${ALL_SETS.join(', ')})`);
  if (parsed.sets.length === 0) parsed.sets = ALL_SETS;
  return parsed;
}

function fail(message) {
  console.error(`test:compat: ${message}`);
  process.exit(1);
}

function sh(command, commandArgs, cwd, env = process.env) {
  const result = spawnSync(command, commandArgs, { cwd, stdio: 'inherit', env });
  if (result.error) fail(`${command} ${commandArgs.join(' ')}: ${result.error.message}`);
  return result.status ?? 1;
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const rootManifest = readJson(join(ROOT, 'package.json'));

/** The repository's manifest with a set's versions; every pinned package must be a devDependency already. */
function manifestFor(set, versions) {
  const manifest = structuredClone(rootManifest);
  for (const [name, version] of Object.entries(versions.devDependencies)) {
    if (!(name in manifest.devDependencies)) fail(`${set}/versions.json pins ${name}, which is not a devDependency of package.json`);
    manifest.devDependencies[name] = version;
  }
  return manifest;
}

/** A lock describes a manifest when its root entry lists the same dependencies. */
function lockMatches(lock, manifest) {
  const root = lock.packages?.[''] ?? {};
  const same = (a = {}, b = {}) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
  return ['dependencies', 'devDependencies', 'peerDependencies'].every((field) => same(root[field], manifest[field]));
}

/** Copies the working tree into `scratch`, keeping its node_modules. */
function copyTree(scratch) {
  mkdirSync(scratch, { recursive: true });
  for (const entry of readdirSync(scratch)) if (entry !== 'node_modules') rmSync(join(scratch, entry), { recursive: true, force: true });
  for (const entry of readdirSync(ROOT)) {
    if (SKIP.has(entry)) continue;
    cpSync(join(ROOT, entry), join(scratch, entry), {
      recursive: true,
      filter: (source) =>
        !relative(ROOT, source)
          .split('/')
          .some((part) => SKIP.has(part)),
    });
  }
}

/** Type-check and jest for one set; returns jest's exit code. */
function runSet(set) {
  const versions = readJson(join(HERE, set, 'versions.json'));
  const lockFile = join(HERE, set, 'package-lock.json');
  const manifest = manifestFor(set, versions);
  // One scratch folder per checkout and set (two clones may run at once), reused across runs.
  const checkout = createHash('sha256').update(ROOT).digest('hex').slice(0, 8);
  const scratch = join(tmpdir(), `nest-redis-lua-compat-${set}-${checkout}`);
  copyTree(scratch);
  writeFileSync(join(scratch, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(join(scratch, 'package-lock.json'), { force: true });

  if (updateLock) {
    console.log(`test:compat: ${set}: resolving the tree from the npm registry`);
    if (sh('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], scratch) !== 0)
      fail(`${set}: npm install --package-lock-only failed`);
    cpSync(join(scratch, 'package-lock.json'), lockFile);
    console.log(`test:compat: wrote ${relative(ROOT, lockFile)}`);
  } else {
    if (!existsSync(lockFile)) fail(`${relative(ROOT, lockFile)} is missing: run npm run test:compat -- --update-lock`);
    if (!lockMatches(readJson(lockFile), manifest)) {
      fail(
        `${relative(ROOT, lockFile)} does not match package.json + ${set}/versions.json (a dependency changed): run npm run test:compat -- --update-lock`,
      );
    }
    cpSync(lockFile, join(scratch, 'package-lock.json'));
  }

  const lockSha = createHash('sha256')
    .update(readFileSync(join(scratch, 'package-lock.json')))
    .digest('hex');
  const marker = join(scratch, 'node_modules', '.nrl-compat-lock');
  if (!existsSync(marker) || readFileSync(marker, 'utf8') !== lockSha) {
    console.log(`test:compat: ${set}: npm ci in ${scratch}`);
    if (sh('npm', ['ci', '--no-audit', '--no-fund'], scratch) !== 0) fail(`${set}: npm ci failed`);
    writeFileSync(marker, lockSha);
  }

  // The tree must hold exactly the pinned versions (a lock resolved elsewhere could hide a drift).
  for (const [name, version] of Object.entries(versions.devDependencies)) {
    const installed = readJson(join(scratch, 'node_modules', name, 'package.json')).version;
    if (installed !== version) fail(`${set}: ${name} is ${installed} in the scratch tree, ${version} is pinned`);
  }
  console.log(
    `test:compat: ${set}: ${Object.entries(versions.devDependencies)
      .map(([n, v]) => `${n}@${v}`)
      .join(', ')}; node ${process.version}`,
  );

  if (sh('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit'], scratch) !== 0) fail(`${set}: the type-check failed`);
  // Last, so that the array option takes no jest argument of the caller; '/node_modules/' is jest's
  // default, which the option replaces.
  // A set's "scripts" runs its suites in that script mode (test/harness/harness-env.ts), so that CI
  // runs the whole suite under EVAL and under Redis Functions, each on both NestJS and ioredis majors.
  const scripts = versions.scripts ?? 'eval';
  console.log(`test:compat: ${set}: scripts: '${scripts}'`);
  return sh('npx', ['jest', ...jestArgs, '--testPathIgnorePatterns', '/node_modules/', ...VERSION_INDEPENDENT], scratch, {
    ...process.env,
    NRL_TEST_SCRIPTS: scripts,
  });
}

let failed = 0;
for (const set of sets) {
  const started = Date.now();
  const code = runSet(set);
  console.log(`test:compat: ${set}: jest exited ${code} after ${Math.round((Date.now() - started) / 1000)} s`);
  if (code !== 0) failed += 1;
}
process.exit(failed === 0 ? 0 : 1);
