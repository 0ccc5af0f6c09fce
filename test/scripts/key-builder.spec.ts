import calculateSlot from 'cluster-key-slot';
import fc from 'fast-check';
import { encodeKeyPart, KeyBuilder, RedisLuaInputError } from 'nest-redis-lua';

/** Identifiers a user might send: braces, colons, stars, spaces, newlines, unicode, and 10 kB strings. */
const identifier = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom('{', '}', ':', '*', ' ', '%', '#', '\n', 'a', '7', 'é', '🔑', '%7B', '%3A') }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ minLength: 10_000, maxLength: 10_050, unit: fc.constantFrom('a', ':', '{') }),
);
const tuple = fc.array(identifier, { minLength: 1, maxLength: 3 });

/** Any JavaScript string: code units of every kind, lone surrogates included, among separators. */
const anyText = fc.string({
  unit: fc.oneof(
    fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\ufffd', ':', '%', '{', '#'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 12,
});

/** What Redis receives of a key: its UTF-8 bytes. */
const wire = (key: string): string => Buffer.from(key, 'utf8').toString('hex');

/** The slot Redis Cluster computes for a key (hash tag rules included). */
const slotOf = (key: string): number => calculateSlot(key);

/** The hash tag Redis uses: the text between the first `{` and the first `}` after it, if not empty. */
function hashTagOf(key: string): string | undefined {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : undefined;
}

describe('KeyBuilder', () => {
  const keys = new KeyBuilder('nrl');

  it('distinct identifier tuples never produce the same key', () => {
    fc.assert(
      fc.property(tuple, tuple, (a, b) => {
        fc.pre(JSON.stringify(a) !== JSON.stringify(b));
        expect(keys.key('rl', a)).not.toBe(keys.key('rl', b));
        expect(keys.key('lb', ['board'], ...a)).not.toBe(keys.key('lb', ['board'], ...b));
      }),
      { numRuns: 500 },
    );
  });

  it('over any JavaScript strings: a key is refused (lone surrogate) or distinct from every other on the wire', () => {
    const seen = new Map<string, string>();
    fc.assert(
      fc.property(anyText, (text) => {
        if (!text.isWellFormed()) {
          expect(() => keys.key('rl', [text])).toThrow(RedisLuaInputError);
          expect(() => keys.key('lb', ['board'], text)).toThrow(/lone surrogate/);
          return;
        }
        const bytes = wire(keys.key('rl', [text]));
        const earlier = seen.get(bytes);
        if (earlier !== undefined) expect(earlier).toBe(text);
        seen.set(bytes, text);
      }),
      { numRuns: 2000 },
    );
    // The pair that used to meet: both lone surrogates became U+FFFD on the wire.
    expect(() => keys.key('rl', ['\ud800'])).toThrow('holds a lone surrogate (\\ud800) at index 0');
    expect(() => keys.key('rl', ['a\udbff'])).toThrow('at index 1');
    expect(keys.key('rl', ['\ud83d\udd11'])).toBe('nrl:rl:{\ud83d\udd11}');
  });

  it('moving parts between the tag and the suffix never collides', () => {
    fc.assert(
      fc.property(identifier, identifier, identifier, (a, b, c) => {
        expect(keys.key('x', [a, b], c)).not.toBe(keys.key('x', [a], b, c));
      }),
    );
  });

  it('all keys of one call share a slot: the tag is exactly the encoded identifiers', () => {
    fc.assert(
      fc.property(tuple, fc.array(identifier, { maxLength: 3 }), (tag, suffix) => {
        const key = keys.key('lock', tag, ...suffix);
        const sibling = keys.key('lock', tag, 'fence');
        expect(hashTagOf(key)).toBe(tag.map(encodeKeyPart).join(':'));
        expect(slotOf(key)).toBe(slotOf(sibling));
        expect(slotOf(key)).toBe(slotOf(keys.tag(tag)));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every key inside its prefix and feature namespace', () => {
    fc.assert(
      fc.property(tuple, (tag) => {
        const key = keys.key('rl', tag);
        expect(key.startsWith('nrl:rl:{')).toBe(true);
        expect(new KeyBuilder('other').key('rl', tag)).not.toBe(key);
      }),
    );
  });

  it('keeps keys short: long identifiers become a digest', () => {
    const key = keys.key('rl', ['x'.repeat(10_000)]);
    expect(key.length).toBeLessThan(80);
    expect(keys.key('rl', ['user:42 {a}'])).toBe('nrl:rl:{user%3A42 %7Ba%7D}');
    expect(keys.key('rl', [''])).toBe('nrl:rl:{%}');
  });

  it('rejects unsafe feature names and non-finite numbers', () => {
    expect(() => keys.key('r:l', ['a'])).toThrow('key feature');
    expect(() => keys.key('rl', [Number.NaN])).toThrow('finite');
    expect(() => keys.key('rl', [])).toThrow('at least one tag part');
  });

  it('keyFactory builds exactly the keys of key() for one tag part', () => {
    const rule = keys.keyFactory('rl', 'l', 60_000, 100);
    const plain = keys.keyFactory('lock');
    fc.assert(
      fc.property(identifier, (id) => {
        expect(rule(id)).toBe(keys.key('rl', [id], 'l', 60_000, 100));
        expect(plain(id)).toBe(keys.key('lock', [id]));
      }),
      { numRuns: 300 },
    );
    expect(() => keys.keyFactory('r:l')).toThrow('key feature');
  });

  it('scopedKeyFactory builds the keys of key() with the marker and the scope, also past its cache of scope encodings', () => {
    const scoped = keys.scopedKeyFactory('rl', 'in', 'l', 60_000, 100);
    fc.assert(
      fc.property(identifier, identifier, (id, scope) => {
        expect(scoped(id, scope)).toBe(keys.key('rl', [id], 'in', scope, 'l', 60_000, 100));
        expect(scoped(id, scope)).toBe(keys.key('rl', [id], 'in', scope, 'l', 60_000, 100)); // cached now
      }),
      { numRuns: 300 },
    );
    // More scopes than the cache keeps: still exact.
    for (let i = 0; i < 600; i++) expect(scoped('a', `GET /r/:${i}`)).toBe(`nrl:rl:{a}:in:GET /r/%3A${i}:l:60000:100`);
    // A scope that cannot be a key is refused every time (never cached).
    for (let i = 0; i < 2; i++) expect(() => scoped('a', '\ud800')).toThrow('well-formed Unicode');
    expect(() => keys.scopedKeyFactory('rl', 'i:n')).toThrow('key marker');
  });
});
