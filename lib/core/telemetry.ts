import { Logger } from '@nestjs/common';
import type { RedisLuaUnavailableError } from './errors';
import type { RedisLuaEvent, RedisLuaEventListener } from './events';
import { message } from './messages';
import { OtelMetrics, OtelTracing, type ScriptSpan } from './otel';

/** The module options that turn telemetry on (validated with the others, see redis-lua.module.ts). */
export interface TelemetryOptions {
  onEvent?: RedisLuaEventListener;
  metrics?: boolean;
  tracing?: boolean;
}

/** Why `tracing: true` cannot work (`@opentelemetry/api` is not installed), or undefined when it can. */
export function tracingUnavailable(options: TelemetryOptions): string | undefined {
  if (options.tracing !== true || OtelTracing.load()) return undefined;
  return 'option "tracing": true needs the package @opentelemetry/api, which is not installed: npm install @opentelemetry/api';
}

/**
 * Where the features report their events: the `onEvent` listener and the OpenTelemetry metrics, and
 * the spans of script calls. Made only when one of them is on ({@link Telemetry.create}); otherwise
 * the features hold `undefined` and every report is skipped (`telemetry?.emit({...})` does not even
 * build the event).
 */
export class Telemetry {
  private listenerFailed = false;

  private constructor(
    private readonly listener: RedisLuaEventListener | undefined,
    private readonly metrics: OtelMetrics | undefined,
    private readonly tracer: OtelTracing | undefined,
    private readonly logger: Logger,
  ) {}

  /**
   * The module's telemetry, or undefined when nothing would receive it: no `onEvent`, `tracing` off,
   * and no OpenTelemetry meter provider registered (or `metrics: false`).
   */
  static create(options: TelemetryOptions): Telemetry | undefined {
    const metrics = options.metrics === false ? undefined : OtelMetrics.ifRegistered();
    const tracing = options.tracing === true ? OtelTracing.load() : undefined;
    if (!options.onEvent && !metrics && !tracing) return undefined;
    return new Telemetry(options.onEvent, metrics, tracing, new Logger('RedisLua'));
  }

  /** For the boot log line: where the events go, e.g. `OpenTelemetry metrics and onEvent`. */
  get summary(): string {
    const sinks = [this.metrics && 'OpenTelemetry metrics', this.tracer && 'spans', this.listener && 'onEvent'].filter(Boolean);
    return sinks.length === 1 ? String(sinks[0]) : `${sinks.slice(0, -1).join(', ')} and ${sinks.at(-1)}`;
  }

  /** Whether events go anywhere (a listener or metrics), as opposed to spans only. */
  get recording(): boolean {
    return this.listener !== undefined || this.metrics !== undefined;
  }

  /** Reports an event to the metrics and the listener; never throws (a throwing listener is logged once). */
  emit(event: RedisLuaEvent): void {
    this.metrics?.record(event);
    const { listener } = this;
    if (!listener) return;
    try {
      listener(event);
    } catch (err) {
      if (this.listenerFailed) return;
      this.listenerFailed = true;
      const text = err instanceof Error ? err.message : String(err);
      this.logger.error(message('', `the onEvent listener threw on a "${event.type}" event (ignored, and logged only once): ${text}`));
    }
  }

  /** Reports a call Redis could not answer (`operation`: the script or the method). */
  unavailable(error: RedisLuaUnavailableError, operation: string): void {
    this.emit({ type: 'connection.unavailable', reason: error.reason, operation, redisCode: error.redisCode });
  }

  /** Whether script calls get spans (`tracing: true`). */
  get tracing(): boolean {
    return this.tracer !== undefined;
  }

  /** A script command's span, when tracing is on. */
  scriptSpan(script: string, operation: string): ScriptSpan | undefined {
    return this.tracer?.start(script, operation);
  }
}
