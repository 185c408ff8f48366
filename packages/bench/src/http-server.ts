// Child process: the Fastify app of row 1, alone on its event loop (the load generator is another process).
import Fastify from 'fastify';
import { childArgs, serveRequests } from './child.js';
import { ourCache, ready } from './ours.js';
import { client } from './redis.js';
import { makeSearchAnswer, searchAnswerSchema } from './payload.js';

interface Args {
  redisUrl: string;
  db: number;
  service: string;
  l1MaxBytes: number;
}

const args = childArgs<Args>();
const answer = makeSearchAnswer();
const loader = async (): Promise<unknown> => answer;

const cache = ourCache(args.redisUrl, args.service, { responses: { ttl: 3600 }, responses_l1: { ttl: 3600, l1MaxBytes: args.l1MaxBytes } }, args.db);
const redisTier = cache.category('responses');
const l1Tier = cache.category('responses_l1');

// logger off: request logging would cost the same on every route and only blur the comparison.
const app = Fastify({ logger: false });
const schema = { response: { 200: searchAnswerSchema } };

app.get('/nocache', { schema }, async () => answer);
app.get('/redis', { schema }, async (_req, reply) => {
  const body = await redisTier.wrapJson('answer', loader);
  return reply.type('application/json; charset=utf-8').send(body);
});
// The floor for a Redis hit: one GET of the same bytes on a bare ioredis client, no cache library.
const raw = client(args.redisUrl, args.db);
const RAW_KEY = `${args.service}:raw:answer`;
app.get('/raw', { schema }, async (_req, reply) => {
  const body = await raw.getBuffer(RAW_KEY);
  return reply.type('application/json; charset=utf-8').send(body);
});
app.get('/l1', { schema }, async (_req, reply) => {
  const body = await l1Tier.wrapJson('answer', loader);
  return reply.type('application/json; charset=utf-8').send(body);
});

await ready(cache);
await redisTier.delete('answer');
await l1Tier.delete('answer');
await redisTier.wrapJson('answer', loader);
await l1Tier.wrapJson('answer', loader);
await raw.set(RAW_KEY, JSON.stringify(answer));
const address = await app.listen({ port: 0, host: '127.0.0.1' });

serveRequests(async (msg) => {
  if (msg.type === 'counters') return { counters: cache.counters() };
  if (msg.type === 'cpu') {
    const u = process.cpuUsage();
    return { cpuUs: u.user + u.system };
  }
  throw new Error(`unknown request ${String(msg.type)}`);
});
process.send?.({ ready: true, address });

const shutdown = async (): Promise<void> => {
  await app.close();
  await cache.close();
  raw.disconnect();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
