// What a job leaves in the sequence table when it ends: pure table policy, no model.
import type { EngineSessions } from "./engine-sessions.ts";
import type { Job } from "./job.ts";
import type { SequenceTable } from "./seq-table.ts";
import { SeqState } from "./sequence.ts";

/** A job that ran ends: the session keeps what its client received. Returns whether a session remains. */
export function settleJob(job: Job, table: SequenceTable): boolean {
  const seq = job.seq;
  table.transition(seq, SeqState.Idle);
  if (seq.ephemeral) return false; // one-off: stays in the KV cache for its prefix only, never persisted
  if (job.delivered === null) return true;
  if (job.fresh && job.delivered === 0) return !table.drop(seq.requestId); // the client saw nothing of it
  table.truncate(seq, job.startLen + job.delivered);
  return true;
}

/** A job that never started decoding: a new session leaves nothing behind, an old one is as it was. */
export function withdrawJob(job: Job, table: SequenceTable, sessions: EngineSessions): boolean {
  const seq = job.seq;
  sessions.unused(seq);
  if (job.fresh) return table.withdraw(seq), false;
  table.transition(seq, seq.seqId >= 0 ? SeqState.Idle : SeqState.Evicted);
  return false; // unchanged: nothing new to persist
}
