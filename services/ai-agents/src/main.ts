import { shutdownTracing } from '@aicache/tracing';
import { loadConfig, runServer } from '@aicache/service-kit';
import { buildApp } from './app.js';
import { ConfigSchema } from './config.js';

const config = loadConfig(ConfigSchema);
const app = await buildApp(config);
await runServer(app, config, { afterClose: shutdownTracing });
