// Structured log lines: one JSON object per line (stdout for info, stderr otherwise), so a
// client's string (a request_id, an error message quoting input) can never forge a line or a field.
export type Level = "info" | "warn" | "error";

export function logEvent(level: Level, event: string, fields: Record<string, unknown>, component = "sessions"): void {
  const line = JSON.stringify({ ts: new Date().toISOString(), level, component, event, ...fields });
  if (level === "info") console.log(line);
  else console.warn(line);
}

/** An error's message and stack as fields (escaped, on one line). */
export function errorFields(err: unknown): Record<string, unknown> {
  return err instanceof Error ? { error: err.message, stack: err.stack } : { error: String(err) };
}
