/**
 * Every ```ts block of README.md is type-checked against the library, so the docs cannot rot.
 * Each block is compiled as its own module; it must be complete (its own imports).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyBuilder, LuaScript, LuaScriptError, REDIS_LUA_KEYS, RedisLuaModule, getScriptToken } from 'nest-redis-lua';
import ts from 'typescript';
import { describeTopologies } from '../harness/topologies';

const ROOT = join(__dirname, '..', '..');

interface Block {
  line: number;
  code: string;
}

function tsBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end].trim() !== '```') end++;
    blocks.push({ line: start + 1, code: lines.slice(start, end).join('\n') });
    i = end;
  }
  return blocks;
}

describe('README.md examples', () => {
  const blocks = tsBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));

  it('has TypeScript examples', () => {
    expect(blocks.length).toBeGreaterThan(0);
  });

  it('type-checks every ```ts block against the library', () => {
    const files = new Map(blocks.map((b) => [join(ROOT, `README.block-${b.line}.ts`), b]));
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.Node20,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      strict: true,
      noEmit: true,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      esModuleInterop: true,
      skipLibCheck: true,
      types: ['node'],
      baseUrl: ROOT,
      paths: { 'nest-redis-lua': ['./lib/index.ts'] },
    };
    const host = ts.createCompilerHost(options);
    const readFile = host.readFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    host.readFile = (name) => {
      const block = files.get(name);
      return block ? `${block.code}\nexport {};\n` : readFile(name);
    };
    host.fileExists = (name) => files.has(name) || fileExists(name);
    const program = ts.createProgram([...files.keys()], options, host);
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && files.has(d.file.fileName))
      .map((d) => {
        const block = files.get(d.file!.fileName)!;
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `README.md:${block.line + line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    expect(problems).toEqual([]);
  });
});

/** The ```lua block of "Your own scripts", run as the README shows it: a file registered with forFeature. */
describeTopologies('README.md "Your own scripts" Lua example', (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Your own scripts'), readme.indexOf('### How scripts run'));
  const lua = /```lua\n([\s\S]*?)```/.exec(section)?.[1];
  const dir = mkdtempSync(join(tmpdir(), 'nrl-readme-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('moves a balance atomically, refuses a short one, and rejects a bad amount with LuaScriptError', async () => {
    expect(lua).toBeDefined();
    const path = join(dir, 'transfer.lua');
    writeFileSync(path, lua!);
    const app = await t.app([
      RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() }),
      RedisLuaModule.forFeature([{ name: 'transfer', path, numberOfKeys: 2 }]),
    ]);
    const transfer = app.get<LuaScript<[0 | 1, number, number]>>(getScriptToken('transfer'));
    const keys = app.get<KeyBuilder>(REDIS_LUA_KEYS);
    const [from, to] = [keys.key('acct', ['ada'], 'checking'), keys.key('acct', ['ada'], 'savings')];
    await t.client().set(from, '100');
    expect(await transfer.run([from, to], [30])).toEqual([1, 70, 30]);
    expect(await transfer.run([from, to], [100])).toEqual([0, 70, 30]);
    const err = await transfer.run([from, to], ['1.5']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LuaScriptError);
    expect((err as LuaScriptError).message).toContain('amount must be a positive integer, got 1.5');
  });
});
