import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/**
 * The sample's OpenTelemetry SDK: a meter provider whose reader is the Prometheus exporter, served
 * by the app itself at `GET /metrics` (no second port). It is registered when this file is first
 * imported, which app.module.ts does before anything is created: nest-redis-lua looks for a meter
 * provider when its module starts, so an app registers its SDK before `NestFactory.create` (in a
 * real app: the first import of main.ts, or `node --require ./otel.js`).
 */
export const prometheus = new PrometheusExporter({ preventServerStart: true });

metrics.setGlobalMeterProvider(new MeterProvider({ readers: [prometheus] }));
