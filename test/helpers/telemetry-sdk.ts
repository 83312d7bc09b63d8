import { resourceFromAttributes } from '@opentelemetry/resources'
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'

/** Collects on demand: the SDK's own ResourceMetrics, as an exporter would get them. */
class OnDemandReader extends MetricReader {
  protected async onShutdown() {}
  protected async onForceFlush() {}
}

export async function metricsPayload() {
  const reader = new OnDemandReader()
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'nowatch-sdk-metrics' }),
    readers: [reader],
  })
  provider.getMeter('app').createCounter('sdk.requests').add(7, { route: '/sync' })
  const { resourceMetrics } = await reader.collect()
  return resourceMetrics
}

export function logsPayload() {
  const exporter = new InMemoryLogRecordExporter()
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'nowatch-sdk-logs' }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  })
  provider.getLogger('app').emit({
    severityNumber: 17,
    severityText: 'ERROR',
    body: 'upload failed',
    attributes: { 'http.status': 503 },
  })
  return exporter.getFinishedLogRecords()
}
