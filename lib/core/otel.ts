/**
 * OpenTelemetry, when the application installed `@opentelemetry/api` (an optional peer dependency):
 * the metrics of {@link RedisLuaEvent}s and the spans of script calls. Nothing here is loaded or
 * allocated unless the module's telemetry is on (see {@link Telemetry.create}).
 */
import type { Attributes, Histogram, Meter, Span } from '@opentelemetry/api';
import { errorType, type RedisLuaEvent } from './events';

type OtelApi = typeof import('@opentelemetry/api');

/** The instrumentation scope's name: the package. */
const SCOPE = 'nest-redis-lua';

let api: OtelApi | null | undefined;

/** `@opentelemetry/api`, or undefined when the application did not install it. */
function loadApi(): OtelApi | undefined {
  if (api === undefined) {
    try {
      // An optional peer: required only here, only when telemetry could be on.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      api = require('@opentelemetry/api') as OtelApi;
    } catch {
      api = null;
    }
  }
  return api ?? undefined;
}

/** Bucket bounds of the duration histograms, in ms (a script call takes well under a millisecond; a lock wait up to seconds). */
const MS_BUCKETS = [0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];

/**
 * Attribute sets a {@link Tally} keeps before it folds the rest into one overflow set: with it, the
 * 2000 series the SDK keeps per instrument by default (it would fold the 2000th itself), and a
 * bound on this process's memory whatever a caller passes as `route`.
 */
const MAX_ROWS = 1999;
const OVERFLOW: Attributes = { 'otel.metric.overflow': true };

/**
 * A counter counted in this process and reported to OpenTelemetry as an observable counter (its
 * cumulative value per attribute set, read when the SDK collects): adding is a few map lookups,
 * where a synchronous counter's `add` hashes its attributes on every call (about 1 µs, as much as
 * the rest of a rate-limit decision). Attribute values are kept in nested maps, in the order of
 * `names`; an undefined value leaves its attribute out.
 */
class Tally {
  private readonly root = new Map<string | undefined, unknown>();
  private readonly rows: Array<{ attributes: Attributes; value: number }> = [];
  private overflow?: { attributes: Attributes; value: number };

  constructor(
    meter: Meter,
    name: string,
    description: string,
    unit: string,
    private readonly names: readonly string[],
  ) {
    meter.createObservableCounter(`nest_redis_lua.${name}`, { description, unit }).addCallback((result) => {
      for (const row of this.rows) result.observe(row.value, row.attributes);
      if (this.overflow) result.observe(this.overflow.value, this.overflow.attributes);
    });
  }

  add(a: string, b?: string, c?: string): void {
    const values = [a, b, c];
    let level = this.root;
    const last = this.names.length - 1;
    for (let i = 0; i < last; i++) {
      let next = level.get(values[i]) as Map<string | undefined, unknown> | undefined;
      if (!next) level.set(values[i], (next = new Map()));
      level = next;
    }
    const row = level.get(values[last]) as { value: number } | undefined;
    if (row) row.value += 1;
    else this.addRow(level, values);
  }

  private addRow(level: Map<string | undefined, unknown>, values: Array<string | undefined>): void {
    if (this.rows.length >= MAX_ROWS) {
      this.overflow ??= { attributes: OVERFLOW, value: 0 };
      this.overflow.value += 1;
      return;
    }
    const attributes: Attributes = {};
    this.names.forEach((name, i) => {
      if (values[i] !== undefined) attributes[name] = values[i];
    });
    const row = { attributes, value: 1 };
    this.rows.push(row);
    level.set(values[this.names.length - 1], row);
  }
}

const byMeter = new WeakMap<Meter, OtelMetrics>();

/**
 * The library's instruments on the application's meter provider: counters kept as {@link Tally}s,
 * durations as histograms (attributes: the few a call has, so that recording stays cheap).
 */
export class OtelMetrics {
  private readonly decisions: Tally;
  private readonly lockAcquire: Histogram;
  private readonly lockHeld: Histogram;
  private readonly lockLost: Tally;
  private readonly cacheRequests: Tally;
  private readonly counterRejections: Tally;
  private readonly submissions: Tally;
  private readonly scriptDuration: Histogram;
  /** The attributes of a script's successful calls, one object per script. */
  private readonly scriptAttributes = new Map<string, Attributes>();
  private readonly scriptReloads: Tally;
  private readonly unavailable: Tally;

  private constructor(meter: Meter) {
    const tally = (name: string, description: string, unit: string, names: readonly string[]): Tally =>
      new Tally(meter, name, description, unit, names);
    const histogram = (name: string, description: string): Histogram =>
      meter.createHistogram(`nest_redis_lua.${name}`, { description, unit: 'ms', advice: { explicitBucketBoundaries: MS_BUCKETS } });
    this.decisions = tally('rate_limit.decisions', 'Rate-limit consumes decided, by outcome, rule and route', '{decision}', [
      'outcome',
      'rule',
      'route',
    ]);
    this.lockAcquire = histogram('lock.acquire.duration', 'Time from a lock or permit request to its outcome, waiting included');
    this.lockHeld = histogram('lock.held.duration', 'Time a lock or permit was held, until its release or loss');
    this.lockLost = tally('lock.lost', 'Locks and permits lost while held, by reason', '{lock}', ['kind', 'reason']);
    this.cacheRequests = tally('cache.requests', 'CacheAsideService.getOrLoad calls, by outcome', '{request}', ['outcome']);
    this.counterRejections = tally('counter.rejections', 'Bounded-counter changes refused at their bound', '{rejection}', ['operation']);
    this.submissions = tally('leaderboard.submissions', 'Leaderboard submits, by outcome', '{submission}', ['outcome']);
    this.scriptDuration = histogram('script.duration', 'Lua script calls, from send to reply, by script (error.type when it failed)');
    this.scriptReloads = tally(
      'script.reloads',
      'Calls sent again because a server lacked the script (NOSCRIPT) or its function',
      '{reload}',
      ['script', 'reason'],
    );
    this.unavailable = tally('connection.unavailable', 'Calls Redis could not answer (unreachable, time-out, refused)', '{call}', [
      'reason',
      'operation',
    ]);
  }

  /**
   * The instruments, when `@opentelemetry/api` is installed and a meter provider is registered
   * (the SDK started before the Nest application was created); otherwise undefined, and the library
   * records nothing.
   */
  static ifRegistered(): OtelMetrics | undefined {
    const otel = loadApi();
    if (!otel) return undefined;
    const meter = otel.metrics.getMeter(SCOPE);
    // The API's no-op meter (no provider registered) is one shared object.
    if (meter === otel.createNoopMeter()) return undefined;
    // One set of instruments per meter, shared by every application of the process: an observable
    // counter per application would report several values for one series.
    let instruments = byMeter.get(meter);
    if (!instruments) byMeter.set(meter, (instruments = new OtelMetrics(meter)));
    return instruments;
  }

  record(event: RedisLuaEvent): void {
    switch (event.type) {
      case 'rate_limit.decision':
        this.decisions.add(event.outcome, event.rule, event.route);
        break;
      case 'lock.acquire':
        this.lockAcquire.record(event.durationMs, { kind: event.kind, outcome: event.outcome });
        break;
      case 'lock.held':
        this.lockHeld.record(event.durationMs, { kind: event.kind, end: event.end });
        break;
      case 'lock.lost':
        this.lockLost.add(event.kind, event.reason);
        break;
      case 'cache.request':
        this.cacheRequests.add(event.outcome);
        break;
      case 'counter.rejection':
        this.counterRejections.add(event.operation);
        break;
      case 'leaderboard.submission':
        this.submissions.add(event.outcome);
        break;
      case 'script.call':
        this.scriptDuration.record(event.durationMs, this.scriptAttributesOf(event.script, event.errorType));
        break;
      case 'script.reload':
        this.scriptReloads.add(event.script, event.reason);
        break;
      case 'connection.unavailable':
        this.unavailable.add(event.reason, event.operation);
        break;
    }
  }

  /** `{ script }` (one object per script), or with the failure's `error.type`. */
  private scriptAttributesOf(script: string, errorType: string | undefined): Attributes {
    if (errorType !== undefined) return { script, 'error.type': errorType };
    let attributes = this.scriptAttributes.get(script);
    if (!attributes) this.scriptAttributes.set(script, (attributes = { script }));
    return attributes;
  }
}

/** A script call's span: ended once, with the failure if there was one. */
export interface ScriptSpan {
  end(error?: unknown): void;
}

/** The spans of script calls (`forRoot({ tracing: true })`), on the application's tracer provider. */
export class OtelTracing {
  private constructor(private readonly otel: OtelApi) {}

  /** The tracing, or undefined when `@opentelemetry/api` is not installed. */
  static load(): OtelTracing | undefined {
    const otel = loadApi();
    return otel ? new OtelTracing(otel) : undefined;
  }

  /**
   * A client span for one script command, child of the active span (the request's, with an HTTP
   * instrumentation), with the database semantic conventions: `db.system.name` `redis`,
   * `db.operation.name` the command (`EVALSHA`, `EVAL`, `FCALL`, ...), `db.stored_procedure.name` the script.
   */
  start(script: string, operation: string): ScriptSpan {
    const { trace, context, SpanKind } = this.otel;
    const span = trace.getTracer(SCOPE).startSpan(
      `${operation} ${script}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'db.system.name': 'redis', 'db.operation.name': operation, 'db.stored_procedure.name': script },
      },
      context.active(),
    );
    return { end: (error) => this.end(span, error) };
  }

  private end(span: Span, error: unknown): void {
    if (error !== undefined) {
      const failure = error instanceof Error ? error : new Error(String(error));
      span.recordException(failure);
      span.setAttribute('error.type', errorType(failure));
      span.setStatus({ code: this.otel.SpanStatusCode.ERROR, message: failure.message });
    }
    span.end();
  }
}
