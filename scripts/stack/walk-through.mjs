// What npm start prints once the stack is ready: the URLs and commands to try it.

/** `urls`: the worker's, the proxy's and the agents' base URLs, in that order. */
export function walkThrough(urls, token, redisUrl, apiKey) {
  const [worker, proxy, agents] = urls;
  // The scripts default to 127.0.0.1:8001-8003, 127.0.0.1:6379 and .data/admin-token: say only what differs.
  const differs = [
    ['MULTIMODAL_WORKER_URL', worker, 'http://127.0.0.1:8001'],
    ['RETRIEVAL_PROXY_URL', proxy, 'http://127.0.0.1:8002'],
    ['AI_AGENTS_URL', agents, 'http://127.0.0.1:8003'],
    // REDIS_PASSWORD / REDIS_USERNAME in the environment reach the scripts as they are; never print a password.
    ['REDIS_URL', redisUrl === process.env.REDIS_URL ? '$REDIS_URL' : new URL(redisUrl).host === '127.0.0.1:6379' ? undefined : redisUrl, undefined],
    ['CACHE_ADMIN_TOKEN_FILE', token.where === 'CACHE_ADMIN_TOKEN' ? undefined : token.where, '.data/admin-token'],
  ].filter(([, value, fallback]) => value !== undefined && value !== fallback);
  const checkEnv = differs.map(([name, value]) => `${name}=${value} `).join('');
  const json = `-H 'content-type: application/json' -H "Authorization: Bearer $KEY"`;
  const id = `node -pe 'JSON.parse(require("fs").readFileSync(0)).id'`;
  return `
  multimodal-worker  ${worker}   docs ${worker}/docs
  retrieval-proxy    ${proxy}   docs ${proxy}/docs
  ai-agents          ${agents}   docs ${agents}/docs
  admin token        ${token.where}
  API key (demo)     ${apiKey.where}   (user '${apiKey.user}', tenant default; every route but /health, /ready, /metrics, /docs needs one)

Try it (another terminal):
  KEY=${apiKey.key}
  # 1. Ingest a document through the proxy (the worker embeds its chunks)
  curl -s -X POST ${proxy}/api/v1/documents ${json} \\
    -d '{"id":"redis-intro","title":"Redis","text":"Redis is an in-memory key-value store. It keeps data in RAM and can persist it with an append-only file. Keys can expire after a time to live."}'
  # 2. Search twice: the first answer says x-cache: miss, the second x-cache: hit
  curl -s -i -X POST ${proxy}/api/v1/search ${json} -d '{"query":"how does redis persist data?"}'
  curl -s -i -X POST ${proxy}/api/v1/search ${json} -d '{"query":"how does redis persist data?"}'
  # 3. Search by meaning: the question shares no word with the document it finds
  curl -s -X POST ${proxy}/api/v1/documents ${json} \\
    -d '{"id":"kitten-care","title":"Kitten care","text":"Kittens need several small meals daily, their first vaccines at eight weeks, and regular visits to the vet."}'
  curl -s -X POST ${proxy}/api/v1/search ${json} -d '{"query":"How do I keep a cat healthy?","limit":1}'
  # 4. Who the key is; a session instead of a key (24 h, pushed out on each use)
  curl -s ${agents}/api/v1/auth/me -H "Authorization: Bearer $KEY"
  curl -s -X POST ${agents}/api/v1/auth/login -H 'content-type: application/json' \\
    -d "{\\"username\\":\\"${apiKey.user}\\",\\"password\\":\\"$(cat ${apiKey.passwordWhere})\\"}"
  # 5. Create an agent, start a conversation, ask it (context comes from the proxy)
  AGENT=$(curl -s -X POST ${agents}/api/v1/agents ${json} -d '{"name":"helper","instructions":"Answer from the documents."}' | ${id})
  CONV=$(curl -s -X POST ${agents}/api/v1/agents/$AGENT/conversations -H "Authorization: Bearer $KEY" | ${id})
  curl -s -X POST ${agents}/api/v1/conversations/$CONV/messages ${json} -d '{"content":"How does Redis keep data?"}'
  # 6. Admin routes need the admin token (or an admin key): cache figures, a round trip, clearing the proxy's cache
  curl -s ${proxy}/api/v1/cache/stats -H "Authorization: Bearer ${token.shell}"
  curl -s -X POST ${proxy}/api/v1/cache/test -H "Authorization: Bearer ${token.shell}"
  curl -s -X DELETE ${proxy}/api/v1/cache/clear -H "Authorization: Bearer ${token.shell}"
  # Checks (exit 0 when all is well):
  ${checkEnv}infra/scripts/health-check.sh && ${checkEnv}infra/scripts/test-redis-integration.sh

Ctrl-C stops everything.`;
}
