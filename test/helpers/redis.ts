// Tests start their own redis-server: the launcher is the cluster's (src/cluster/redis-process.ts).
export { hasRedis, startRedis, type RedisServer } from "../../src/cluster/redis-process.ts";
