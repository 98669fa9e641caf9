// Structured log lines for session events: one JSON object per line on stderr, so a client's
// request_id (any string) can never forge a line or a field.
export type Level = "info" | "warn" | "error";

export function logEvent(level: Level, event: string, fields: Record<string, unknown>): void {
  const line = JSON.stringify({ ts: new Date().toISOString(), level, component: "sessions", event, ...fields });
  if (level === "info") console.log(line);
  else console.warn(line);
}
