// Checks the browser's leaf decoder (src/claims.ts) against the golden
// leaves of log/event (testdata/leaves: hex leaf bytes and their JSON).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { checkNode, decodeCBOR, decodeLeaf, opensCommitment } from "../src/claims";

const dir = "../testdata/leaves";
const names = readdirSync(dir).filter((f) => f.endsWith(".leaf")).map((f) => f.slice(0, -5));

function hexBytes(s: string): Uint8Array {
  const h = s.trim();
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

test("golden leaves decode to their JSON", () => {
  assert.ok(names.length >= 5, `only ${names.length} golden leaves`);
  for (const name of names) {
    const leaf = hexBytes(readFileSync(`${dir}/${name}.leaf`, "utf8"));
    const want = JSON.parse(readFileSync(`${dir}/${name}.json`, "utf8")).event ?? {};
    const ev = decodeLeaf(leaf);
    assert.equal(ev.eventId, want.eventId ?? "", name);
    assert.equal(ev.tenant, want.tenant ?? "", name);
    assert.equal(ev.operation, want.operation ?? "OPERATION_UNSPECIFIED", name);
    assert.equal(ev.actorId, want.actor?.id ?? "", name);
    assert.equal(ev.runId, want.workflow?.runId ?? "", name);
    assert.equal(ev.stepId, want.workflow?.stepId ?? "", name);
    assert.deepEqual(ev.inputs.map((a) => a.uri), (want.inputs ?? []).map((a: { uri?: string }) => a.uri ?? ""), name);
    assert.deepEqual(ev.outputs.map((a) => a.uri), (want.outputs ?? []).map((a: { uri?: string }) => a.uri ?? ""), name);
    assert.deepEqual(ev.subjectEventIds, want.subjectEventIds ?? [], name);
    assert.deepEqual(
      ev.sensitive.map((x) => [x.name, x.classification, x.keyId, Buffer.from(x.commitment).toString("base64")]),
      (want.sensitive ?? []).map((x: { name?: string; classification?: string; keyId?: string; commitment?: string }) => [x.name ?? "", x.classification ?? "", x.keyId ?? "", x.commitment ?? ""]),
      name,
    );
    // A node built from the JSON is asserted by the leaf; a changed one is not.
    if (want.eventId) {
      const node = { id: "n", kind: "NODE_KIND_ACTIVITY", leafIndex: "0", eventId: want.eventId, operation: want.operation, actorId: want.actor?.id ?? "", runId: want.workflow?.runId ?? "", stepId: want.workflow?.stepId ?? "", workflowId: want.workflow?.workflowId ?? "", eventTime: want.eventTime };
      assert.equal(checkNode(node, ev), "", name);
      assert.notEqual(checkNode({ ...node, stepId: node.stepId + "x" }, ev), "", name);
      assert.notEqual(checkNode({ ...node, actorId: node.actorId + "x" }, ev), "", name);
    }
  }
});

test("malformed CBOR is refused", () => {
  for (const bad of [[0x18], [0x62, 0x61], [0x9f], [0xf5], [0xc0, 0x01], [0x01, 0x02], [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]) {
    assert.throws(() => decodeCBOR(new Uint8Array(bad)), String(bad));
  }
  assert.equal(decodeCBOR(new Uint8Array([0x1b, 0x17, 0x9a, 0x1c, 0x4a, 0x33, 0x4a, 0x28, 0x5c])), 0x179a1c4a334a285cn);
});

// The golden sensitive leaf was sealed by log/event's goldenSeal: salt i is
// 32 bytes of i+1. The browser's commitment check must agree with Go's
// event.Commitment on it, and refuse a changed value or salt.
test("revealed values open the golden leaf's commitments", () => {
  const ev = decodeLeaf(hexBytes(readFileSync(`${dir}/sensitive.leaf`, "utf8")));
  const values = ["alice@example.com", "+1 555 0100", "1250000.00"];
  assert.equal(ev.sensitive.length, values.length);
  ev.sensitive.forEach((s, i) => {
    const salt = new Uint8Array(32).fill(i + 1);
    assert.ok(opensCommitment(s.commitment, salt, values[i]), s.name);
    assert.ok(!opensCommitment(s.commitment, salt, values[i] + " "), `${s.name}: changed value`);
    assert.ok(!opensCommitment(s.commitment, new Uint8Array(32).fill(i + 2), values[i]), `${s.name}: other salt`);
    assert.ok(!opensCommitment(s.commitment, salt.subarray(1), values[i]), `${s.name}: short salt`);
  });
});
