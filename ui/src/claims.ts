// claims.ts checks that every node and edge of a lineage answer is asserted
// by the event in the leaf it cites (a port of client.VerifyTrace's rules):
// a server that invents, edits or re-points an edge is caught even though
// each cited leaf is genuinely in the log. Leaves are decoded from their
// canonical CBOR (log/event/ENCODING.md: maps keyed by proto field
// numbers, empty fields left out).
import type { LineageEdge, LineageNode } from "./api";

type CBOR = number | bigint | Uint8Array | string | CBOR[] | Map<number | string, CBOR>;

const utf8 = new TextDecoder("utf-8", { fatal: true });

// decodeCBOR decodes the subset the leaf encoding uses: unsigned and
// negative integers, byte and text strings, arrays, maps; definite lengths.
export function decodeCBOR(b: Uint8Array): CBOR {
  let i = 0;
  // arg reads an argument: a number when it is a safe integer, else a
  // bigint (Unix nanoseconds are beyond 2^53).
  const arg = (info: number): number | bigint => {
    if (info < 24) return info;
    const n = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : -1;
    if (n < 0 || i + n > b.length) throw new Error("CBOR: bad length");
    let v = 0n;
    for (let k = 0; k < n; k++) v = (v << 8n) | BigInt(b[i++]);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const len = (info: number): number => {
    const n = arg(info);
    if (typeof n !== "number") throw new Error("CBOR: length too large");
    return n;
  };
  const item = (depth: number): CBOR => {
    if (depth > 16 || i >= b.length) throw new Error("CBOR: truncated or too deep");
    const ib = b[i++];
    const major = ib >> 5;
    if (major === 0) return arg(ib & 31);
    if (major === 1) {
      const v = arg(ib & 31);
      return typeof v === "number" ? -1 - v : -1n - v;
    }
    const n = len(ib & 31);
    switch (major) {
      case 2:
      case 3: {
        if (i + n > b.length) throw new Error("CBOR: truncated string");
        const s = b.subarray(i, i + n);
        i += n;
        return major === 2 ? s.slice() : utf8.decode(s);
      }
      case 4: {
        const a: CBOR[] = [];
        for (let k = 0; k < n; k++) a.push(item(depth + 1));
        return a;
      }
      case 5: {
        const m = new Map<number | string, CBOR>();
        for (let k = 0; k < n; k++) {
          const key = item(depth + 1);
          if (typeof key !== "number" && typeof key !== "string") throw new Error("CBOR: bad map key");
          m.set(key, item(depth + 1));
        }
        return m;
      }
    }
    throw new Error(`CBOR: major type ${major} not used by leaves`);
  };
  const v = item(0);
  if (i !== b.length) throw new Error("CBOR: trailing bytes");
  return v;
}

// Operation numbers as in proto/provlog/v1/event.proto (20-22: key history
// events, log/authorship/KEYS.md).
const operations: Record<number, string> = {
  0: "OPERATION_UNSPECIFIED", 1: "OPERATION_READ", 2: "OPERATION_WRITE", 3: "OPERATION_TRANSFORM", 4: "OPERATION_EXTERNAL_CALL",
  5: "OPERATION_APPROVAL", 6: "OPERATION_OVERRIDE", 7: "OPERATION_RUN_START", 8: "OPERATION_RUN_COMPLETE", 9: "OPERATION_RUN_FAIL",
  20: "OPERATION_KEY_REGISTER", 21: "OPERATION_KEY_ROTATE", 22: "OPERATION_KEY_REVOKE",
};

interface Asset {
  uri: string;
  version: string;
  recordKey: string;
  classification: string;
}

// LeafEvent is what a leaf says, in the fields the checks need.
export interface LeafEvent {
  eventId: string;
  tenant: string;
  operation: string;
  eventTimeNs: bigint;
  actorId: string;
  workflowId: string;
  runId: string;
  parentRunId: string;
  stepId: string;
  inputs: Asset[];
  outputs: Asset[];
  fieldLineage: { outputUri: string; outputField: string; sources: { uri: string; field: string }[] }[];
  subjectEventIds: string[];
}

function m(v: CBOR | undefined): Map<number | string, CBOR> {
  return v instanceof Map ? v : new Map();
}
function s(v: CBOR | undefined): string {
  return typeof v === "string" ? v : "";
}
function a(v: CBOR | undefined): CBOR[] {
  return Array.isArray(v) ? v : [];
}
function asset(v: CBOR): Asset {
  const x = m(v);
  return { uri: s(x.get(1)), version: s(x.get(2)), classification: s(x.get(5)), recordKey: s(x.get(6)) };
}

export function decodeLeaf(leaf: Uint8Array): LeafEvent {
  const top = decodeCBOR(leaf);
  // Version 2 differs only by sealed sensitive values (event key 16,
  // log/event/ENCODING.md §11), which the lineage checks do not read.
  if (!(top instanceof Map) || (top.get(1) !== 1 && top.get(1) !== 2)) throw new Error("leaf: not a version 1 or 2 leaf");
  const e = m(top.get(2));
  const actor = m(e.get(6));
  const wf = m(e.get(7));
  const t = e.get(5);
  return {
    eventId: s(e.get(2)),
    tenant: s(e.get(3)),
    operation: operations[typeof e.get(4) === "number" ? (e.get(4) as number) : 0] ?? "OPERATION_UNSPECIFIED",
    eventTimeNs: typeof t === "number" || typeof t === "bigint" ? BigInt(t) : 0n,
    actorId: s(actor.get(2)),
    workflowId: s(wf.get(3)),
    runId: s(wf.get(5)),
    parentRunId: s(wf.get(6)),
    stepId: s(wf.get(7)),
    inputs: a(e.get(8)).map(asset),
    outputs: a(e.get(9)).map(asset),
    fieldLineage: a(e.get(10)).map((f) => {
      const x = m(f);
      return { outputUri: s(x.get(1)), outputField: s(x.get(2)), sources: a(x.get(3)).map((r) => ({ uri: s(m(r).get(1)), field: s(m(r).get(2)) })) };
    }),
    subjectEventIds: a(e.get(14)).map(s),
  };
}

const loose = (x: string, y: string) => x === y || x === "" || y === "";

function assetIn(n: { uri: string; version?: string; recordKey?: string }, list: Asset[], isLoose: boolean): Asset | undefined {
  const eq = (x: string, y: string) => x === y || (isLoose && loose(x, y));
  return list.find((x) => x.uri === n.uri && eq(x.version, n.version ?? "") && eq(x.recordKey, n.recordKey ?? ""));
}

// timeNs turns an RFC 3339 timestamp of the JSON mapping into Unix ns.
function timeNs(ts: string): bigint {
  const mm = /^(.*?)(?:\.(\d{1,9}))?Z$/.exec(ts);
  if (!mm) return -1n;
  const ms = Date.parse(mm[1] + "Z");
  if (Number.isNaN(ms)) return -1n;
  return BigInt(ms) * 1000000n + BigInt((mm[2] ?? "").padEnd(9, "0") || "0");
}

// checkNode returns "" when the leaf's event asserts the node, else why not.
export function checkNode(n: LineageNode, ev: LeafEvent): string {
  switch (n.kind) {
    case "NODE_KIND_ASSET": {
      const ref = { uri: n.asset?.uri ?? "", version: n.asset?.version, recordKey: n.asset?.recordKey };
      if (n.masked && !ref.uri) return "";
      const x = assetIn(ref, ev.inputs, false) ?? assetIn(ref, ev.outputs, false);
      if (!x) return assetIn(ref, ev.inputs, true) || assetIn(ref, ev.outputs, true) ? "" : `the leaf's event neither reads nor writes ${ref.uri}`;
      if (!n.masked && (n.classification ?? "") !== x.classification) return `classification ${n.classification}, the leaf says ${x.classification}`;
      return "";
    }
    case "NODE_KIND_ACTIVITY":
      if (n.eventId !== ev.eventId || n.operation !== ev.operation || (n.runId ?? "") !== ev.runId || (n.stepId ?? "") !== ev.stepId || (n.workflowId ?? "") !== ev.workflowId) {
        return `the step does not match its leaf's event ${ev.eventId}`;
      }
      if (!n.masked && (n.actorId ?? "") !== ev.actorId) return `actor ${n.actorId}, the leaf says ${ev.actorId}`;
      if (n.eventTime && timeNs(n.eventTime) !== ev.eventTimeNs) return `event time ${n.eventTime} differs from the leaf's`;
      return "";
    case "NODE_KIND_RUN":
      return n.runId === ev.runId || n.runId === ev.parentRunId ? "" : `run ${n.runId} is not named by its leaf's event`;
  }
  return `unknown node kind ${n.kind}`;
}

// checkEdge returns "" when the leaf's event asserts the edge, else why not.
export function checkEdge(ed: LineageEdge, from: LineageNode | undefined, to: LineageNode | undefined, ev: LeafEvent): string {
  if (!from || !to) return "the edge names a node not in the answer";
  const leaf = ed.leafIndex ?? "0";
  const isActivityOf = (n: LineageNode) => n.kind === "NODE_KIND_ACTIVITY" && (n.leafIndex ?? "0") === leaf;
  const ref = (n: LineageNode) => ({ uri: n.asset?.uri ?? "", version: n.asset?.version, recordKey: n.asset?.recordKey });
  const isAsset = (n: LineageNode) => n.kind === "NODE_KIND_ASSET";
  switch (ed.kind) {
    case "EDGE_KIND_INPUT":
      return isAsset(from) && isActivityOf(to) && assetIn(ref(from), ev.inputs, false) ? "" : "the event does not read that asset";
    case "EDGE_KIND_OUTPUT":
      return isActivityOf(from) && isAsset(to) && assetIn(ref(to), ev.outputs, false) ? "" : "the event does not write that asset";
    case "EDGE_KIND_FIELD":
      if (!isAsset(from) || !isAsset(to)) return "field edges join assets";
      return ev.fieldLineage.some((f) => f.outputUri === to.asset?.uri && f.outputField === (ed.toField ?? "") && f.sources.some((r) => r.uri === from.asset?.uri && r.field === (ed.fromField ?? "")))
        ? ""
        : "the event has no such field lineage";
    case "EDGE_KIND_APPROVES":
    case "EDGE_KIND_OVERRIDES": {
      const want = ed.kind === "EDGE_KIND_APPROVES" ? "OPERATION_APPROVAL" : "OPERATION_OVERRIDE";
      return isActivityOf(from) && ev.operation === want && to.kind === "NODE_KIND_ACTIVITY" && ev.subjectEventIds.includes(to.eventId ?? "") ? "" : `the event is not a ${want} of ${to.eventId}`;
    }
    case "EDGE_KIND_STEP_OF_RUN":
      return isActivityOf(from) && to.kind === "NODE_KIND_RUN" && to.runId === ev.runId ? "" : `the event is not a step of run ${to.runId}`;
    case "EDGE_KIND_PARENT_RUN":
      return from.kind === "NODE_KIND_RUN" && to.kind === "NODE_KIND_RUN" && from.runId === ev.runId && to.runId === ev.parentRunId ? "" : "the event does not make that run the parent";
    case "EDGE_KIND_MATCHES": {
      if (!isAsset(from) || !isAsset(to)) return "matches edges join assets";
      if (!assetIn(ref(from), ev.inputs, false) && !assetIn(ref(from), ev.outputs, false)) return `the event does not reference ${from.asset?.uri}`;
      const f = ref(from);
      const t = ref(to);
      return f.uri === t.uri && loose(f.version ?? "", t.version ?? "") && loose(f.recordKey ?? "", t.recordKey ?? "") ? "" : "not the same data";
    }
  }
  return `unknown edge kind ${ed.kind}`;
}
