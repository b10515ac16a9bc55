// verify-worker.ts checks an answer's proofs off the main thread: a
// 2,000-leaf answer costs tens of thousands of hashes.
import { type LeafProofsJSON, b64encode, parsePolicy, verifyLeafProofs } from "./verify";

export interface VerifyRequest {
  seq: number;
  logKey: string;
  witnessPolicy: string;
  proofs?: LeafProofsJSON;
}

export interface VerifyResponse {
  seq: number;
  checkpoint?: { origin: string; size: string; root: string };
  checkpointError?: string;
  leaves: [string, string][];
  leafBytes: [string, string][];
}

self.onmessage = (ev: MessageEvent<VerifyRequest>) => {
  const { seq, logKey, witnessPolicy, proofs } = ev.data;
  let resp: VerifyResponse;
  try {
    const res = verifyLeafProofs(proofs, parsePolicy(logKey, witnessPolicy));
    resp = {
      seq,
      checkpoint: res.checkpoint && { origin: res.checkpoint.origin, size: String(res.checkpoint.size), root: b64encode(res.checkpoint.root) },
      checkpointError: res.checkpointError,
      leaves: [...res.leaves],
      leafBytes: [...res.leafBytes].map(([i, b]) => [i, b64encode(b)]),
    };
  } catch (e) {
    resp = { seq, checkpointError: (e as Error).message, leaves: [], leafBytes: [] };
  }
  (self as unknown as Worker).postMessage(resp);
};
