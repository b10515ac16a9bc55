// verify.ts checks what provlogd hands out, in the browser, trusting only the
// log key (and witness keys) the user chose: C2SP signed-note checkpoints
// (Ed25519 log signature, cosignature/v1 witness cosignatures under a
// tessera-format witness policy) and RFC 6962 inclusion proofs.
// It is written from the specs, not from the server's code: the Go test
// ui/vectors_test.go writes vectors with Go libraries and verify.test.ts
// checks them.
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function b64decode(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64encode(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export class VerifyError extends Error {}

// ---- RFC 6962 Merkle tree hashing ----

export function leafHash(leaf: Uint8Array): Uint8Array {
  return sha256(concat(new Uint8Array([0]), leaf));
}

function nodeHash(l: Uint8Array, r: Uint8Array): Uint8Array {
  return sha256(concat(new Uint8Array([1]), l, r));
}

function bitLen(x: bigint): number {
  let n = 0;
  while (x > 0n) {
    x >>= 1n;
    n++;
  }
  return n;
}

function onesCount(x: bigint): number {
  let n = 0;
  while (x > 0n) {
    n += Number(x & 1n);
    x >>= 1n;
  }
  return n;
}

// rootFromInclusionProof computes the tree root implied by an inclusion
// proof of the leaf with hash lh at index in a tree of size (RFC 6962 2.1.1,
// as RFC 9162 2.1.3.2 states the verification).
export function rootFromInclusionProof(index: bigint, size: bigint, lh: Uint8Array, proof: Uint8Array[]): Uint8Array {
  if (index >= size) throw new VerifyError(`index ${index} is beyond tree size ${size}`);
  const inner = bitLen(index ^ (size - 1n));
  const border = onesCount(index >> BigInt(inner));
  if (proof.length !== inner + border) {
    throw new VerifyError(`inclusion proof has ${proof.length} hashes, want ${inner + border}`);
  }
  let h = lh;
  for (let i = 0; i < inner; i++) {
    if (proof[i].length !== 32) throw new VerifyError("proof hash is not 32 bytes");
    h = ((index >> BigInt(i)) & 1n) === 0n ? nodeHash(h, proof[i]) : nodeHash(proof[i], h);
  }
  for (let i = inner; i < proof.length; i++) {
    if (proof[i].length !== 32) throw new VerifyError("proof hash is not 32 bytes");
    h = nodeHash(proof[i], h);
  }
  return h;
}

export function verifyInclusion(index: bigint, size: bigint, lh: Uint8Array, proof: Uint8Array[], root: Uint8Array): void {
  const got = rootFromInclusionProof(index, size, lh, proof);
  if (!equal(got, root)) {
    throw new VerifyError(`inclusion proof of leaf ${index} leads to root ${hex(got).slice(0, 16)}…, the checkpoint says ${hex(root).slice(0, 16)}…`);
  }
}

// ---- C2SP signed notes ----

const algEd25519 = 0x01;
const algCosignatureV1 = 0x04;

export interface NoteKey {
  name: string;
  keyHash: number; // uint32
  alg: number;
  pub: Uint8Array; // 32-byte Ed25519 public key
  text: string; // the verifier key as given
}

function keyHashOf(name: string, alg: number, pub: Uint8Array): number {
  const h = sha256(concat(enc.encode(name + "\n"), new Uint8Array([alg]), pub));
  return ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
}

// parseVerifierKey parses "name+hash+base64(alg||key)" (C2SP signed-note
// verifier key), requiring the algorithm byte want.
export function parseVerifierKey(vkey: string, want: number = algEd25519): NoteKey {
  const text = vkey.trim();
  // The base64 key may itself hold "+": split at the first two only.
  const m = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(text);
  if (!m) throw new VerifyError("verifier key: want name+hash+key");
  const [, name, hashHex, keyB64] = m;
  if (name === "" || /[\s+]/.test(name)) throw new VerifyError("verifier key: bad name");
  if (!/^[0-9a-f]{8}$/.test(hashHex)) throw new VerifyError("verifier key: bad key hash");
  let raw: Uint8Array;
  try {
    raw = b64decode(keyB64);
  } catch {
    throw new VerifyError("verifier key: key is not base64");
  }
  if (raw.length !== 33 || raw[0] !== want) {
    throw new VerifyError(`verifier key: want algorithm ${want} and a 32-byte Ed25519 key`);
  }
  const pub = raw.slice(1);
  const keyHash = parseInt(hashHex, 16) >>> 0;
  if (keyHashOf(name, want, pub) !== keyHash) throw new VerifyError("verifier key: key hash does not match the key");
  return { name, keyHash, alg: want, pub, text };
}

export interface NoteSig {
  name: string;
  keyHash: number;
  sig: Uint8Array; // without the key hash
}

export interface Note {
  text: string; // the signed text, ending in "\n"
  sigs: NoteSig[];
}

// parseNote splits a signed note into its text and signature lines.
export function parseNote(raw: Uint8Array | string): Note {
  const s = typeof raw === "string" ? raw : dec.decode(raw);
  const split = s.lastIndexOf("\n\n");
  if (split < 0) throw new VerifyError("checkpoint: not a signed note (no blank line)");
  const text = s.slice(0, split + 1);
  const sigBlock = s.slice(split + 2);
  if (!sigBlock.endsWith("\n")) throw new VerifyError("checkpoint: signature block does not end in a newline");
  const sigs: NoteSig[] = [];
  for (const line of sigBlock.slice(0, -1).split("\n")) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new VerifyError("checkpoint: malformed signature line");
    let b: Uint8Array;
    try {
      b = b64decode(m[2]);
    } catch {
      throw new VerifyError("checkpoint: signature is not base64");
    }
    if (b.length < 5) throw new VerifyError("checkpoint: signature too short");
    sigs.push({ name: m[1], keyHash: ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0, sig: b.slice(4) });
  }
  if (sigs.length === 0) throw new VerifyError("checkpoint: no signatures");
  return { text, sigs };
}

function sigsBy(n: Note, k: NoteKey): NoteSig[] {
  return n.sigs.filter((s) => s.name === k.name && s.keyHash === k.keyHash);
}

// edVerify is strict RFC 8032 verification (not ZIP 215), as Go's
// crypto/ed25519; malformed input is a failed verification.
function edVerify(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  try {
    return ed25519.verify(sig, msg, pub, { zip215: false });
  } catch {
    return false;
  }
}

// checkLogSig throws unless the note carries a valid Ed25519 signature by k.
function checkLogSig(n: Note, k: NoteKey): void {
  const mine = sigsBy(n, k);
  if (mine.length === 0) throw new VerifyError(`checkpoint: no signature by the log key ${k.name}+${k.keyHash.toString(16).padStart(8, "0")}`);
  for (const s of mine) {
    if (s.sig.length !== 64 || !edVerify(s.sig, enc.encode(n.text), k.pub)) {
      throw new VerifyError("checkpoint: the log signature does not verify");
    }
  }
}

// cosigned reports whether the note carries a valid cosignature/v1 by k.
function cosigned(n: Note, k: NoteKey): boolean {
  for (const s of sigsBy(n, k)) {
    if (s.sig.length !== 72) continue;
    let ts = 0n;
    for (let i = 0; i < 8; i++) ts = (ts << 8n) | BigInt(s.sig[i]);
    const msg = enc.encode(`cosignature/v1\ntime ${ts}\n${n.text}`);
    if (edVerify(s.sig.slice(8), msg, k.pub)) return true;
  }
  return false;
}

export interface Checkpoint {
  origin: string;
  size: bigint;
  root: Uint8Array;
}

function parseCheckpointBody(text: string): Checkpoint {
  const lines = text.split("\n");
  if (lines.length < 4) throw new VerifyError("checkpoint: body too short");
  const [origin, sizeS, rootS] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeS)) throw new VerifyError("checkpoint: bad tree size");
  let root: Uint8Array;
  try {
    root = b64decode(rootS);
  } catch {
    throw new VerifyError("checkpoint: root hash is not base64");
  }
  if (root.length !== 32) throw new VerifyError("checkpoint: root hash is not 32 bytes");
  return { origin, size: BigInt(sizeS), root };
}

// ---- witness policy (tessera's format, as provlogd's --witness-policy) ----

type Member = { kind: "witness"; key: NoteKey } | { kind: "group"; need: number; members: Member[] };

export interface Policy {
  log: NoteKey;
  quorum: Member | null; // null: no witnesses required
  witnessNames: string[];
}

// parsePolicy reads the log key and an optional witness policy:
//   witness NAME VKEY [URL]
//   group NAME N|any|all MEMBER...
//   quorum NAME|none
export function parsePolicy(logKey: string, witnessPolicy = ""): Policy {
  const log = parseVerifierKey(logKey, algEd25519);
  const named = new Map<string, Member>();
  const seenKeys = new Set<string>();
  let quorum: Member | null = null;
  let any = false;
  witnessPolicy.split("\n").forEach((rawLine, i) => {
    const line = rawLine.replace(/#.*/, "").trim();
    if (line === "") return;
    any = true;
    const f = line.split(/\s+/);
    const where = `witness policy line ${i + 1}`;
    switch (f[0]) {
      case "log":
        return;
      case "witness": {
        if (f.length !== 3 && f.length !== 4) throw new VerifyError(`${where}: want witness NAME VKEY [URL]`);
        if (named.has(f[1])) throw new VerifyError(`${where}: ${f[1]} defined twice`);
        const key = parseVerifierKey(f[2], algCosignatureV1);
        const id = `${key.name}+${key.keyHash}`;
        if (seenKeys.has(id)) throw new VerifyError(`${where}: witness ${f[1]} has the key of another witness`);
        seenKeys.add(id);
        named.set(f[1], { kind: "witness", key });
        return;
      }
      case "group": {
        if (f.length < 4) throw new VerifyError(`${where}: want group NAME N|any|all MEMBER...`);
        if (named.has(f[1])) throw new VerifyError(`${where}: ${f[1]} defined twice`);
        const members = f.slice(3).map((m) => {
          const x = named.get(m);
          if (!x) throw new VerifyError(`${where}: unknown member ${m}`);
          return x;
        });
        let need: number;
        if (f[2] === "all") need = members.length;
        else if (f[2] === "any") need = 1;
        else if (/^[0-9]+$/.test(f[2])) need = parseInt(f[2], 10);
        else throw new VerifyError(`${where}: bad threshold ${f[2]}`);
        if (need < 1 || need > members.length) throw new VerifyError(`${where}: threshold ${need} of ${members.length}`);
        named.set(f[1], { kind: "group", need, members });
        return;
      }
      case "quorum": {
        if (f.length !== 2) throw new VerifyError(`${where}: want quorum NAME|none`);
        if (f[1] === "none") {
          quorum = null;
          return;
        }
        const q = named.get(f[1]);
        if (!q) throw new VerifyError(`${where}: unknown quorum ${f[1]}`);
        quorum = q;
        return;
      }
      default:
        throw new VerifyError(`${where}: unknown keyword ${f[0]}`);
    }
  });
  if (any && quorum === null && !/^\s*quorum\s+none\b/m.test(witnessPolicy)) {
    throw new VerifyError("witness policy: no quorum line");
  }
  const witnessNames = [...named.entries()].filter(([, m]) => m.kind === "witness").map(([n]) => n);
  return { log, quorum, witnessNames };
}

function satisfied(m: Member, n: Note): boolean {
  if (m.kind === "witness") return cosigned(n, m.key);
  let got = 0;
  for (const x of m.members) if (satisfied(x, n)) got++;
  return got >= m.need;
}

// verifyCheckpoint checks the log's signature, the origin, and the
// witness quorum of the policy.
export function verifyCheckpoint(raw: Uint8Array | string, p: Policy): Checkpoint {
  const n = parseNote(raw);
  checkLogSig(n, p.log);
  const cp = parseCheckpointBody(n.text);
  if (cp.origin !== p.log.name) throw new VerifyError(`checkpoint: origin ${cp.origin} is not the log key's name ${p.log.name}`);
  if (p.quorum && !satisfied(p.quorum, n)) throw new VerifyError("checkpoint: witness quorum not met");
  return cp;
}

// ---- LeafProofs, as the lineage API returns them (proto JSON mapping) ----

export interface LeafProofsJSON {
  checkpoint?: string; // base64
  treeSize?: string;
  // Proto JSON leaves out zero values: a missing index is leaf 0.
  leaves?: { index?: string; leaf?: string; proof?: number[] }[];
  nodes?: string[];
}

export interface ProofResult {
  // Set when the checkpoint verified.
  checkpoint?: Checkpoint;
  // Why the checkpoint (and so every leaf) failed, if it did.
  checkpointError?: string;
  // Per leaf index: "" when verified, else the reason it failed.
  leaves: Map<string, string>;
  // Verified leaf bytes, by index.
  leafBytes: Map<string, Uint8Array>;
}

// verifyLeafProofs checks every leaf of a LeafProofs against its checkpoint
// under the policy. It never throws: failures are reported per leaf.
export function verifyLeafProofs(lp: LeafProofsJSON | undefined, p: Policy): ProofResult {
  const res: ProofResult = { leaves: new Map(), leafBytes: new Map() };
  if (!lp || !lp.checkpoint) {
    res.checkpointError = "the answer carries no checkpoint";
    for (const l of lp?.leaves ?? []) res.leaves.set(l.index ?? "0", res.checkpointError);
    return res;
  }
  let cp: Checkpoint;
  try {
    cp = verifyCheckpoint(b64decode(lp.checkpoint), p);
    if (BigInt(lp.treeSize ?? "0") !== cp.size) throw new VerifyError(`proofs claim tree size ${lp.treeSize}, the checkpoint says ${cp.size}`);
  } catch (e) {
    res.checkpointError = (e as Error).message;
    for (const l of lp.leaves ?? []) res.leaves.set(l.index ?? "0", res.checkpointError);
    return res;
  }
  res.checkpoint = cp;
  const nodes = (lp.nodes ?? []).map((n) => b64decode(n));
  for (const l of lp.leaves ?? []) {
    const idx = l.index ?? "0";
    try {
      const path = (l.proof ?? []).map((r) => {
        if (r >= nodes.length) throw new VerifyError(`proof node ${r} out of range`);
        return nodes[r];
      });
      const leaf = b64decode(l.leaf ?? "");
      verifyInclusion(BigInt(idx), cp.size, leafHash(leaf), path, cp.root);
      res.leaves.set(idx, "");
      res.leafBytes.set(idx, leaf);
    } catch (e) {
      res.leaves.set(idx, (e as Error).message);
    }
  }
  return res;
}
