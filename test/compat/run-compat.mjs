#!/usr/bin/env node
/**
 * `npm run test:compat`: the whole suite against the older supported version set (NestJS 11 +
 * ioredis 5, exact versions in test/compat/versions.json).
 *
 * It copies the working tree (without node_modules and build output) into a scratch folder outside
 * the repository, writes a package.json whose devDependencies are the repository's with the pinned
 * versions in place of NestJS 12 / ioredis 6, installs the tree pinned by
 * test/compat/package-lock.json (`npm ci`, from the npm registry), then type-checks and runs jest
 * there. Arguments after `--` go to jest.
 *
 *   npm run test:compat                      # type-check + every suite
 *   npm run test:compat -- test/lock         # some suites
 *   npm run test:compat -- --update-lock     # regenerate test/compat/package-lock.json, then run
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const LOCK = join(HERE, 'package-lock.json');
/** Never copied into the scratch folder: installed or built there, or irrelevant to the tests. */
const SKIP = new Set(['node_modules', 'dist', 'dist-sample', '.git', 'coverage', '.tmp']);

const args = process.argv.slice(2);
const updateLock = args.includes('--update-lock');
const jestArgs = args.filter((a) => a !== '--update-lock');

function fail(message) {
  console.error(`test:compat: ${message}`);
  process.exit(1);
}

function sh(command, commandArgs, cwd) {
  const result = spawnSync(command, commandArgs, { cwd, stdio: 'inherit', env: process.env });
  if (result.error) fail(`${command} ${commandArgs.join(' ')}: ${result.error.message}`);
  return result.status ?? 1;
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const versions = readJson(join(HERE, 'versions.json'));
const rootManifest = readJson(join(ROOT, 'package.json'));

// The repository's manifest with the pinned versions: every pin must replace an existing devDependency.
const manifest = structuredClone(rootManifest);
for (const [name, version] of Object.entries(versions.devDependencies)) {
  if (!(name in manifest.devDependencies)) fail(`versions.json pins ${name}, which is not a devDependency of package.json`);
  manifest.devDependencies[name] = version;
}
const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;

/** The lock describes this manifest when its root entry lists the same dependencies. */
function lockMatches(lock) {
  const root = lock.packages?.[''] ?? {};
  const same = (a = {}, b = {}) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
  return same(root.devDependencies, manifest.devDependencies) && same(root.peerDependencies, manifest.peerDependencies) && same(root.dependencies, manifest.dependencies);
}

// One scratch folder per checkout (two clones may run at once), reused across runs of that checkout.
const checkout = createHash('sha256').update(ROOT).digest('hex').slice(0, 8);
const scratch = join(tmpdir(), `nest-redis-lua-compat-${versions.name}-${checkout}`);
mkdirSync(scratch, { recursive: true });

// Fresh sources each run; node_modules is kept while it was installed from the same lock.
for (const entry of readdirSync(scratch)) if (entry !== 'node_modules') rmSync(join(scratch, entry), { recursive: true, force: true });
for (const entry of readdirSync(ROOT)) {
  if (SKIP.has(entry)) continue;
  cpSync(join(ROOT, entry), join(scratch, entry), {
    recursive: true,
    filter: (source) => !relative(ROOT, source).split('/').some((part) => SKIP.has(part)),
  });
}
writeFileSync(join(scratch, 'package.json'), manifestText);
rmSync(join(scratch, 'package-lock.json'), { force: true });

if (updateLock) {
  console.log(`test:compat: resolving the ${versions.name} tree from the npm registry`);
  if (sh('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], scratch) !== 0) fail('npm install --package-lock-only failed');
  cpSync(join(scratch, 'package-lock.json'), LOCK);
  console.log(`test:compat: wrote ${relative(ROOT, LOCK)}`);
} else {
  if (!existsSync(LOCK)) fail(`${relative(ROOT, LOCK)} is missing: run npm run test:compat -- --update-lock`);
  if (!lockMatches(readJson(LOCK))) {
    fail(`${relative(ROOT, LOCK)} does not match package.json + versions.json (a devDependency changed): run npm run test:compat -- --update-lock`);
  }
  cpSync(LOCK, join(scratch, 'package-lock.json'));
}

const lockSha = createHash('sha256').update(readFileSync(join(scratch, 'package-lock.json'))).digest('hex');
const marker = join(scratch, 'node_modules', '.nrl-compat-lock');
if (!existsSync(marker) || readFileSync(marker, 'utf8') !== lockSha) {
  console.log(`test:compat: npm ci in ${scratch}`);
  if (sh('npm', ['ci', '--no-audit', '--no-fund'], scratch) !== 0) fail('npm ci failed');
  writeFileSync(marker, lockSha);
}

// The tree must hold exactly the pinned versions (a lock resolved elsewhere could hide a drift).
for (const [name, version] of Object.entries(versions.devDependencies)) {
  const installed = readJson(join(scratch, 'node_modules', name, 'package.json')).version;
  if (installed !== version) fail(`${name} is ${installed} in the scratch tree, ${version} is pinned`);
}
console.log(
  `test:compat: ${versions.name}: ${Object.entries(versions.devDependencies).map(([n, v]) => `${n}@${v}`).join(', ')}; node ${process.version}`,
);

if (sh('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit'], scratch) !== 0) fail('type-check failed against the compat versions');
process.exit(sh('npx', ['jest', ...jestArgs], scratch));
