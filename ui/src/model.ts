// model.ts holds the graph the user has loaded so far (several trace
// answers merged) and the proof status of every leaf those answers cite.
import type { Gap, LineageEdge, LineageNode, TraceResponse } from "./api";
import { type Checkpoint, type ProofResult, b64decode } from "./verify";
import type { VerifyResponse } from "./verify-worker";

// proofResult turns a verify worker's answer back into a ProofResult.
export function proofResult(r: VerifyResponse): ProofResult & { claims: Map<string, string> } {
  return {
    claims: new Map(r.claims),
    checkpoint: r.checkpoint && { origin: r.checkpoint.origin, size: BigInt(r.checkpoint.size), root: b64decode(r.checkpoint.root) },
    checkpointError: r.checkpointError,
    leaves: new Map(r.leaves),
    leafBytes: new Map(r.leafBytes.map(([i, b]) => [i, b64decode(b)])),
  };
}

export type ProofStatus = "verified" | "failed" | "unchecked";

export interface LeafStatus {
  status: ProofStatus;
  why: string;
  checkpoint?: Checkpoint;
  leaf?: Uint8Array;
}

export function edgeKey(e: LineageEdge): string {
  return `${e.from}\u0000${e.to}\u0000${e.kind}\u0000${e.fromField ?? ""}\u0000${e.toField ?? ""}`;
}

export class Model {
  nodes = new Map<string, LineageNode>();
  edges = new Map<string, LineageEdge>();
  leaves = new Map<string, LeafStatus>();
  // Per node id / edge key: "" when its verified leaf asserts it, else why not.
  claims = new Map<string, string>();
  gaps: Gap[] = [];
  truncated = false;

  clear(): void {
    this.nodes.clear();
    this.edges.clear();
    this.leaves.clear();
    this.claims.clear();
    this.gaps = [];
    this.truncated = false;
  }

  // merge adds an answer and the result of verifying its proofs (null:
  // not checked).
  merge(resp: TraceResponse, res: (ProofResult & { claims?: Map<string, string> }) | null): void {
    // Proto JSON may leave zero values out: leaf 0 has no leafIndex.
    for (const n of resp.nodes ?? []) this.nodes.set(n.id, { ...n, leafIndex: n.leafIndex ?? "0" });
    for (const e of resp.edges ?? []) this.edges.set(edgeKey(e), { ...e, leafIndex: e.leafIndex ?? "0" });
    for (const g of resp.gaps ?? []) {
      if (!this.gaps.some((x) => x.kind === g.kind && x.detail === g.detail)) this.gaps.push(g);
    }
    this.truncated ||= !!resp.truncated;
    if (!res) return;
    for (const [k, why] of res.claims ?? []) {
      // A refuted claim sticks, like a failed proof.
      if (this.claims.get(k)) continue;
      this.claims.set(k, why);
    }
    for (const [idx, why] of res.leaves) {
      const prev = this.leaves.get(idx);
      // A failure anywhere sticks: a leaf proven once and refuted later is
      // not trustworthy.
      if (prev?.status === "failed") continue;
      if (why === "") this.leaves.set(idx, { status: "verified", why: "", checkpoint: res.checkpoint, leaf: res.leafBytes.get(idx) });
      else this.leaves.set(idx, { status: "failed", why });
    }
  }

  status(leafIndex: string): LeafStatus {
    return this.leaves.get(leafIndex) ?? { status: "unchecked", why: "no proof for this leaf was checked" };
  }

  // nodeStatus is the proof status of a node: its leaf verifies and says
  // what the node claims.
  nodeStatus(id: string): LeafStatus {
    const n = this.nodes.get(id);
    if (!n) return { status: "unchecked", why: "unknown node" };
    return this.withClaim(this.status(n.leafIndex), id);
  }

  edgeStatus(e: LineageEdge): LeafStatus {
    return this.withClaim(this.status(e.leafIndex), edgeKey(e));
  }

  private withClaim(st: LeafStatus, key: string): LeafStatus {
    if (st.status !== "verified") return st;
    const why = this.claims.get(key);
    if (why === undefined) return { status: "unchecked", why: "the leaf is proven, but what it says was not compared with this element" };
    if (why !== "") return { status: "failed", why: `the leaf is in the log but does not say this: ${why}` };
    return st;
  }
}
