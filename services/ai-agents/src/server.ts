// Tracing starts before the modules it instruments (fastify, ioredis, http) are loaded, so the service
// itself comes in by dynamic import. With no OTLP endpoint set this loads nothing of OpenTelemetry.
import { startTracing } from '@aicache/tracing';

await startTracing({ serviceName: 'ai-agents' });
await import('./main.js');
