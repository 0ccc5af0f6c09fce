/** Jest: TypeScript (and NestJS 12's ES modules) compiled by SWC; private Redis servers from test/harness. */
const swc = [
  '@swc/jest',
  {
    jsc: {
      target: 'es2022',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      keepClassNames: true,
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: { '^.+\\.(t|j|mj)s$': swc },
  // NestJS 12 ships ES modules; compile them to CommonJS like our own code. So are two packages that
  // CommonJS code loads and Jest cannot load itself before Node 24.9: content-disposition 3, which
  // @fastify/static (mercurius) require()s, and quick-lru, which mercurius import()s (compiled with it).
  transformIgnorePatterns: ['/node_modules/(?!(?:@nestjs/|mercurius/|quick-lru/|(?:.*/node_modules/)?content-disposition/))'],
  moduleNameMapper: { '^nest-redis-lua$': '<rootDir>/lib/index.ts' },
  setupFilesAfterEnv: ['<rootDir>/test/harness/no-unhandled-rejections.ts'],
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  testTimeout: 30000,
  // 2 cores: one worker for the suites plus the Redis servers they talk to.
  maxWorkers: 2,
};
