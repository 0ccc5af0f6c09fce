/**
 * The OpenTelemetry SDK as an application registers it, with in-memory exporters: what the library
 * recorded, read back by metric name and attributes.
 */
import { context, metrics, trace, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** A meter provider registered globally (as the SDK's start() does), until `stop()`. */
export class RegisteredMetrics {
  private readonly exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // Exported on demand only (forceFlush): no timer decides what a test sees.
  private readonly reader = new PeriodicExportingMetricReader({ exporter: this.exporter, exportIntervalMillis: 3_600_000 });
  private readonly provider = new MeterProvider({ readers: [this.reader] });

  constructor() {
    metrics.disable();
    metrics.setGlobalMeterProvider(this.provider);
  }

  /**
   * The total of a metric's points whose attributes include `match`: a counter's sum, a histogram's
   * count of recordings. 0 when nothing was recorded.
   */
  async total(name: string, match: Attributes = {}): Promise<number> {
    const points = await this.points(name);
    return points
      .filter((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value))
      .reduce((sum, point) => sum + point.value, 0);
  }

  /** Every point of a metric: its attributes and its value (a histogram's: its count). */
  async points(name: string): Promise<Array<{ attributes: Attributes; value: number }>> {
    this.exporter.reset();
    await this.reader.forceFlush();
    const metric = this.exporter
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics)
      .filter((scope) => scope.scope.name === 'nest-redis-lua')
      .flatMap((scope) => scope.metrics)
      .find((m) => m.descriptor.name === name);
    if (!metric) return [];
    return metric.dataPoints.map((point) => ({
      attributes: point.attributes,
      value: metric.dataPointType === DataPointType.HISTOGRAM ? (point.value as { count: number }).count : (point.value as number),
    }));
  }

  /** The descriptor of a metric (unit, description), once something was recorded. */
  async descriptor(name: string): Promise<{ unit: string; description: string } | undefined> {
    await this.points(name);
    await this.reader.forceFlush();
    return this.exporter
      .getMetrics()
      .flatMap((resource) => resource.scopeMetrics)
      .flatMap((scope) => scope.metrics)
      .find((m) => m.descriptor.name === name)?.descriptor;
  }

  async stop(): Promise<void> {
    metrics.disable();
    await this.provider.shutdown();
  }
}

/** A tracer provider and an AsyncLocalStorage context manager registered globally, until `stop()`. */
export class RegisteredTracing {
  private readonly exporter = new InMemorySpanExporter();
  private readonly provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.exporter)] });
  private readonly contextManager = new AsyncLocalStorageContextManager().enable();

  constructor() {
    trace.disable();
    context.disable();
    context.setGlobalContextManager(this.contextManager);
    trace.setGlobalTracerProvider(this.provider);
  }

  /** Runs `fn` inside an active span named `name` (as an HTTP instrumentation runs a request); returns the span's id. */
  async inSpan(name: string, fn: () => Promise<unknown>): Promise<string> {
    return trace.getTracer('test').startActiveSpan(name, async (span) => {
      try {
        await fn();
      } finally {
        span.end();
      }
      return span.spanContext().spanId;
    });
  }

  spans(): ReadableSpan[] {
    return this.exporter.getFinishedSpans();
  }

  async stop(): Promise<void> {
    trace.disable();
    context.disable();
    await this.provider.shutdown();
  }
}
