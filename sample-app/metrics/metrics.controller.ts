import { Controller, Get, Req, Res } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { prometheus } from './otel';

/** `GET /metrics`: the app's OpenTelemetry metrics, nest-redis-lua's among them, in the Prometheus text format. */
@Controller('metrics')
export class MetricsController {
  @Get()
  scrape(@Req() req: IncomingMessage, @Res() res: ServerResponse): void {
    prometheus.getMetricsRequestHandler(req, res);
  }
}
