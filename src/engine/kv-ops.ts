// KV-cache edits: decided by policy code (the sequence table), carried out by the runner.
import type { Sequence } from "./sequence.ts";

/**
 * KV-cache edits decided by policy code and carried out by the runner before the next decode, in
 * order: a slot's state is saved before its cells are cleared, a restore comes after the clear.
 */
export type KvOp =
  | { kind: "rm"; seq: number; from: number }
  | { kind: "cp"; src: number; dst: number }
  /** serialise slot `seq` (its first `nPast` tokens) for `target`, which is leaving the KV cache */
  | { kind: "save"; seq: number; target: Sequence; nPast: number }
  /** load `target.restore` into slot `seq`, keeping its first `keep` tokens */
  | { kind: "restore"; seq: number; target: Sequence; keep: number }
  /** `target`'s slot gets the first `keep` tokens' state of slot `src` (a shared prefix) */
  | { kind: "fork"; src: number; target: Sequence; keep: number }
  /** sequences change slots, all at once (sources read, then cleared, then written: swaps work) */
  | { kind: "move"; moves: SlotMove[] };

export interface SlotMove {
  target: Sequence;
  from: number;
  to: number;
  /** its cells, from position 0 */
  nPast: number;
}
