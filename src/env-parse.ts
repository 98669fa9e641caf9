// Reading settings from the environment: numbers, durations and booleans, each refused with a
// ConfigError naming the variable and what it got.

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return v;
}

export function num(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new ConfigError(`${name} must be a number, got "${raw}"`);
  return v;
}

/** A duration for a timer: 0 (off) up to ~24.8 days (setTimeout fires at once beyond 2^31 ms). */
export function seconds(env: Env, name: string, fallback: number): number {
  const v = num(env, name, fallback);
  const max = Math.floor((2 ** 31 - 1) / 1000);
  if (v < 0 || v > max) throw new ConfigError(`${name} must be between 0 and ${max} seconds, got "${env[name]}"`);
  return v;
}

export function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${env[name]}"`);
}
