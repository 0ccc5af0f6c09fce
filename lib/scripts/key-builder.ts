import { createHash } from 'node:crypto';
import { RedisLuaInputError } from '../core/errors';
import { message } from '../core/messages';
import { checkText, inputSite, loneSurrogateText } from '../core/validation';

/** A part of a key: user-supplied identifiers are strings; numbers are written in decimal. */
export type KeyPart = string | number;

/** How many scope encodings one scoped key factory keeps (see {@link KeyBuilder.scopedKeyFactory}). */
const MAX_CACHED_SCOPES = 256;

/** Encoded parts longer than this are replaced by a digest, so that keys stay short. */
const MAX_RAW_PART_LENGTH = 200;

/**
 * A part holding any of these characters is escaped, or holds a surrogate that must be checked
 * (no `g` flag: `test` keeps no state). One scan of the part on the hot path finds both.
 */
const NEEDS_ESCAPE = /[%:{}#\ud800-\udfff]/;

/** Characters that a feature name or a fixed key segment may use (never escaped). */
const SAFE_SEGMENT = /^[A-Za-z0-9_.-]+$/;

/**
 * Escapes the characters that give a key its structure, so that no identifier can
 * end a segment (`:`), open or close a hash tag (`{`, `}`), or pose as a digest (`#`).
 * Percent-encoding with `%` itself escaped is injective: distinct inputs, distinct outputs.
 */
function escapePart(part: string): string {
  if (!NEEDS_ESCAPE.test(part)) return part;
  // A loop, not a replace callback: identifiers like `user:42` are escaped on every rate-limit call.
  let escaped = '';
  let from = 0;
  for (let i = 0; i < part.length; i++) {
    const code = part.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = part.charCodeAt(i + 1);
      if (code > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) loneSurrogate(part, i);
      i++; // a pair (an emoji, say) stays as it is
      continue;
    }
    const replacement =
      code === 0x25 ? '%25' : code === 0x3a ? '%3A' : code === 0x7b ? '%7B' : code === 0x7d ? '%7D' : code === 0x23 ? '%23' : undefined;
    if (replacement !== undefined) {
      escaped += part.slice(from, i) + replacement;
      from = i + 1;
    }
  }
  return escaped + part.slice(from);
}

/**
 * Encodes one user-supplied part. The empty string becomes `%`. Short parts stay readable (`user%3A42`); long ones
 * (over 200 characters once escaped) become `#` + a SHA-256 digest, which no escaped part
 * can start with because `#` is always escaped. Distinct parts give distinct keys as Redis receives
 * them (UTF-8), so text with a lone UTF-16 surrogate, which UTF-8 cannot carry, is refused.
 *
 * @throws RedisLuaInputError when `part` holds a lone surrogate or is a non-finite number.
 * @example
 * encodeKeyPart('user:42'); // 'user%3A42'
 */
export function encodeKeyPart(part: KeyPart): string {
  const text = typeof part === 'number' ? encodeNumber(part) : part;
  // An empty part would give an empty hash tag `{}`, which Redis ignores (the whole key is hashed).
  // A lone `%` cannot come out of escaping, where `%` is always followed by two hex digits.
  if (text.length === 0) return '%';
  const escaped = escapePart(text);
  if (escaped.length <= MAX_RAW_PART_LENGTH) return escaped;
  return `#${createHash('sha256').update(text, 'utf8').digest('base64url')}`;
}

function loneSurrogate(text: string, at: number): never {
  throw new RedisLuaInputError(message('KeyBuilder', loneSurrogateText('a key part', text, at)));
}

function encodeNumber(n: number): string {
  if (!Number.isFinite(n)) throw new RedisLuaInputError(message('KeyBuilder', `a key part must be a finite number, got ${n}`));
  return String(n);
}

/** Throws unless `segment` is a fixed, safe key segment (feature names, suffixes chosen by the library). */
function assertSafeSegment(segment: string, what: string): void {
  if (!SAFE_SEGMENT.test(segment)) {
    throw new Error(`nest-redis-lua: ${what} "${segment}" must match ${SAFE_SEGMENT}`);
  }
}

/** A `keyPrefix`: 1-64 characters, no hash-tag braces, no whitespace. */
const KEY_PREFIX = { pattern: /^[^{}\s]{1,64}$/, patternText: 'a non-empty string of at most 64 characters without braces or whitespace' };

/** Checks a `keyPrefix` option. */
export function validateKeyPrefix(prefix: unknown): string {
  return checkText(prefix, 'keyPrefix', inputSite(''), KEY_PREFIX, 'option');
}

/**
 * Builds every key the library writes:
 *
 * `<prefix>:<feature>:{<tag parts, encoded, joined by ":">}[:<suffix parts>]`
 *
 * - The hash tag holds the routing identity (a rate-limit identifier, a lock resource, a board),
 *   so all keys one script touches share a Redis Cluster slot.
 * - Every user-supplied part is escaped (see {@link encodeKeyPart}); the encoding is injective and
 *   never contains `{`, `}` or `:`, so no identifier can collide with another identifier's keys,
 *   leave its namespace, or move its key to another slot than its tag.
 */
export class KeyBuilder {
  constructor(readonly prefix: string) {
    validateKeyPrefix(prefix);
  }

  /** The routing tag for `tag` parts, braces included: keys built with the same tag share a slot. */
  tag(tag: readonly KeyPart[]): string {
    if (tag.length === 0) throw new Error('nest-redis-lua: a key needs at least one tag part');
    return `{${tag.map(encodeKeyPart).join(':')}}`;
  }

  /**
   * A key of `feature` in the hash tag of `tag`, followed by `suffix` parts (which are encoded too).
   * @param feature a fixed name such as `rl` or `lock` (letters, digits, `_`, `.`, `-`).
   */
  key(feature: string, tag: readonly KeyPart[], ...suffix: KeyPart[]): string {
    assertSafeSegment(feature, 'key feature');
    const head = `${this.prefix}:${feature}:${this.tag(tag)}`;
    return suffix.length === 0 ? head : `${head}:${suffix.map(encodeKeyPart).join(':')}`;
  }

  /**
   * `key(feature, [part], ...suffix)` as a function of the one tag part, for hot paths: the feature
   * is checked and the suffix encoded once, each call only encodes `part`. Same keys as {@link key}.
   */
  keyFactory(feature: string, ...suffix: KeyPart[]): (part: KeyPart) => string {
    assertSafeSegment(feature, 'key feature');
    const head = `${this.prefix}:${feature}:{`;
    const tail = suffix.length === 0 ? '}' : `}:${suffix.map(encodeKeyPart).join(':')}`;
    return (part) => head + encodeKeyPart(part) + tail;
  }

  /**
   * Keys of one identifier within a scope, for hot paths: `(part, scope)` gives
   * `<prefix>:<feature>:{<part>}:<marker>:<scope>[:<suffix>]`, both user parts encoded. In the hash
   * tag of `part` alone, so every scope of an identifier shares its slot. `marker` is a fixed segment
   * that no other key of the feature has in that place, so scoped keys meet no unscoped key.
   */
  scopedKeyFactory(feature: string, marker: string, ...suffix: KeyPart[]): (part: KeyPart, scope: KeyPart) => string {
    assertSafeSegment(feature, 'key feature');
    assertSafeSegment(marker, 'key marker');
    const head = `${this.prefix}:${feature}:{`;
    const middle = `}:${marker}:`;
    const tail = suffix.length === 0 ? '' : `:${suffix.map(encodeKeyPart).join(':')}`;
    // Scopes repeat (a guard's are its routes): their encodings are kept, a bounded number of them.
    const scopes = new Map<KeyPart, string>();
    return (part, scope) => {
      let encoded = scopes.get(scope);
      if (encoded === undefined) {
        encoded = encodeKeyPart(scope);
        if (scopes.size >= MAX_CACHED_SCOPES) scopes.clear();
        scopes.set(scope, encoded);
      }
      return head + encodeKeyPart(part) + middle + encoded + tail;
    };
  }
}
