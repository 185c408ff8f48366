import { shutdownTracing } from '@aicache/tracing';
import { runServer } from '@aicache/service-kit';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';

const config = loadConfig();
const app = await buildApp(config);
await runServer(app, config, { afterClose: shutdownTracing });
