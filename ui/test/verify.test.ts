// Checks src/verify.ts against the vectors ui/vectors_test.go made with Go
// libraries (testdata/vectors.json). Run with `npm test` (node build.mjs --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { type LeafProofsJSON, b64decode, b64encode, leafHash, parsePolicy, parseVerifierKey, verifyCheckpoint, verifyInclusion, verifyLeafProofs } from "../src/verify";

interface Vectors {
  inclusion: { index: number; size: number; leafHash: string; proof: string[] | null; root: string; valid: boolean }[];
  checkpoints: { name: string; logKey: string; witnessPolicy: string; checkpoint: string; valid: boolean; size?: number; root?: string }[];
  keys: { key: string; valid: boolean }[];
  leafProofs: { name: string; logKey: string; leafProofs: LeafProofsJSON; valid: Record<string, boolean> }[];
}

const v: Vectors = JSON.parse(readFileSync("testdata/vectors.json", "utf8"));

test("inclusion proofs", () => {
  assert.ok(v.inclusion.length > 50);
  for (const c of v.inclusion) {
    let err: unknown = null;
    try {
      verifyInclusion(BigInt(c.index), BigInt(c.size), b64decode(c.leafHash), (c.proof ?? []).map(b64decode), b64decode(c.root));
    } catch (e) {
      err = e;
    }
    assert.equal(err === null, c.valid, `index ${c.index} size ${c.size}: valid=${c.valid}, got ${err}`);
  }
});

test("checkpoints and witness policies", () => {
  for (const c of v.checkpoints) {
    let err: unknown = null;
    try {
      const cp = verifyCheckpoint(c.checkpoint, parsePolicy(c.logKey, c.witnessPolicy));
      assert.equal(cp.size, BigInt(c.size!), c.name);
      assert.equal(b64encode(cp.root), c.root, c.name);
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      err = e;
    }
    assert.equal(err === null, c.valid, `${c.name}: valid=${c.valid}, got ${err}`);
  }
});

test("verifier keys", () => {
  for (const k of v.keys) {
    let ok = true;
    try {
      parseVerifierKey(k.key);
    } catch {
      ok = false;
    }
    assert.equal(ok, k.valid, k.key);
  }
});

test("witness policy errors", () => {
  const logKey = v.checkpoints[0].logKey;
  for (const bad of ["witness a notakey\nquorum a\n", "quorum nobody\n", "group g 2 x\n", "frobnicate\n", "witness a k1 k2 k3 k4\n"]) {
    assert.throws(() => parsePolicy(logKey, bad), bad);
  }
});

test("LeafProofs from the REST API, shared nodes, per-leaf failures", () => {
  assert.ok(v.leafProofs.length >= 4);
  for (const c of v.leafProofs) {
    const res = verifyLeafProofs(c.leafProofs, parsePolicy(c.logKey));
    for (const [idx, want] of Object.entries(c.valid)) {
      const why = res.leaves.get(idx);
      assert.notEqual(why, undefined, `${c.name}: leaf ${idx} not reported`);
      assert.equal(why === "", want, `${c.name}: leaf ${idx}: valid=${want}, got ${JSON.stringify(why)}`);
      if (want) assert.ok(res.leafBytes.get(idx), `${c.name}: verified leaf ${idx} has no bytes`);
    }
  }
});

test("LeafProofs without a checkpoint or with the wrong size", () => {
  const c = v.leafProofs[0];
  const p = parsePolicy(c.logKey);
  const none = verifyLeafProofs({ ...c.leafProofs, checkpoint: undefined }, p);
  assert.match(none.checkpointError!, /no checkpoint/);
  assert.ok([...none.leaves.values()].every((w) => w !== ""));
  const wrongSize = verifyLeafProofs({ ...c.leafProofs, treeSize: "36" }, p);
  assert.match(wrongSize.checkpointError!, /tree size/);
  const outOfRange = verifyLeafProofs({ ...c.leafProofs, nodes: [] }, p);
  assert.match(outOfRange.leaves.get("0")!, /out of range/);
  assert.equal(leafHash(new Uint8Array()).length, 32);
});
