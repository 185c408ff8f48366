export { getTestRedis, type TestRedis } from './shared.js';
export { startRedisServer, type RedisServer, type RedisServerOptions } from './server.js';
export { freePort } from './port.js';
export { uniqueName } from './names.js';
export { startRedisContainer, removeOrphanedContainers, dockerMayAnswer, REDIS_IMAGE, OWNER_LABEL, type RedisContainer } from './container.js';
export { countKeys, scanKeys, unlinkMatching } from './keys.js';
export { startRedisCluster, type RedisClusterHandle, type RedisClusterOptions } from './cluster.js';
export { startRedisSentinel, type RedisSentinelSet, type RedisSentinelOptions } from './sentinel.js';
export { askNode, isAlive, parseInfo, type RedisNodeAddress } from './nodes.js';
