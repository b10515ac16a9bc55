// verify-worker.ts checks an answer's proofs off the main thread: a
// 2,000-leaf answer costs tens of thousands of hashes.
import type { LineageEdge, LineageNode } from "./api";
import { type LeafEvent, checkEdge, checkNode, decodeLeaf } from "./claims";
import { edgeKey } from "./model";
import { type LeafProofsJSON, b64encode, parsePolicy, verifyLeafProofs } from "./verify";

export interface VerifyRequest {
  seq: number;
  logKey: string;
  witnessPolicy: string;
  proofs?: LeafProofsJSON;
  // The answer's nodes and edges, checked against the leaves they cite,
  // and the tenant every cited event must belong to.
  tenant: string;
  nodes: LineageNode[];
  edges: LineageEdge[];
}

export interface VerifyResponse {
  seq: number;
  checkpoint?: { origin: string; size: string; root: string };
  checkpointError?: string;
  leaves: [string, string][];
  leafBytes: [string, string][];
  // Per node id and per edge key: "" when the verified leaf asserts it,
  // else why not. Nodes and edges whose leaf did not verify are left out.
  claims: [string, string][];
}

function checkClaims(req: VerifyRequest, leafBytes: Map<string, Uint8Array>): [string, string][] {
  const events = new Map<string, LeafEvent | string>();
  const eventOf = (idx: string): LeafEvent | string | undefined => {
    if (!events.has(idx)) {
      const b = leafBytes.get(idx);
      if (!b) return undefined;
      try {
        const ev = decodeLeaf(b);
        events.set(idx, ev.tenant === req.tenant ? ev : `the leaf belongs to tenant ${ev.tenant}, not ${req.tenant}`);
      } catch (e) {
        events.set(idx, `the leaf does not decode: ${(e as Error).message}`);
      }
    }
    return events.get(idx);
  };
  const out: [string, string][] = [];
  const byId = new Map(req.nodes.map((n) => [n.id, n]));
  for (const n of req.nodes) {
    const ev = eventOf(n.leafIndex ?? "0");
    if (ev === undefined) continue;
    out.push([n.id, typeof ev === "string" ? ev : checkNode(n, ev)]);
  }
  for (const e of req.edges) {
    const ev = eventOf(e.leafIndex ?? "0");
    if (ev === undefined) continue;
    out.push([edgeKey(e), typeof ev === "string" ? ev : checkEdge(e, byId.get(e.from), byId.get(e.to), ev)]);
  }
  return out;
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
      claims: checkClaims(ev.data, res.leafBytes),
    };
  } catch (e) {
    resp = { seq, checkpointError: (e as Error).message, leaves: [], leafBytes: [], claims: [] };
  }
  (self as unknown as Worker).postMessage(resp);
};
