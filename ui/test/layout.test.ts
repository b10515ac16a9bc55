// Checks the fast layered layout used for large graphs: ranks follow edges
// left to right, and it lays out 2,000 nodes. Its speed is printed, not
// asserted (timed assertions flake on a loaded machine); the 15 s guard only
// catches a layout gone superlinear, like dagre's minutes at this size.
import { test } from "node:test";
import assert from "node:assert/strict";

(globalThis as any).self = globalThis; // the worker module sets self.onmessage
const { fastLayered } = await import("../src/layout-worker");

function grid(layers: number, width: number) {
  const nodes: { id: string; w: number; h: number }[] = [];
  const edges: { from: string; to: string }[] = [];
  const a = (l: number, j: number) => `a${l}-${j}`;
  for (let l = 0; l <= layers; l++) for (let j = 0; j < width; j++) nodes.push({ id: a(l, j), w: 200, h: 50 });
  for (let l = 0; l < layers - 1; l++) {
    nodes.push({ id: `r${l}`, w: 200, h: 50 });
    for (let j = 0; j < width; j++) {
      const id = `e${l}-${j}`;
      nodes.push({ id, w: 200, h: 50 });
      edges.push({ from: a(l, j), to: id }, { from: a(l, (j + 1) % width), to: id }, { from: id, to: a(l + 1, j) }, { from: id, to: `r${l}` });
    }
  }
  return { seq: 1, nodes, edges };
}

test("edges point right; cycles do not hang", () => {
  const req = grid(5, 6);
  req.edges.push({ from: "a4-0", to: "a0-0" }); // a cycle
  const p = fastLayered(req);
  assert.equal(Object.keys(p).length, req.nodes.length);
  for (const e of req.edges.slice(0, -1)) assert.ok(p[e.from].x < p[e.to].x, `${e.from} -> ${e.to}`);
  const seen = new Set(Object.values(p).map((q) => `${q.x},${q.y}`));
  assert.equal(seen.size, req.nodes.length, "two nodes share a position");
});

test("2,000 nodes", () => {
  const req = grid(20, 50);
  assert.ok(req.nodes.length >= 2000);
  const t0 = performance.now();
  const p = fastLayered(req);
  const ms = performance.now() - t0;
  console.log(`# fastLayered: ${req.nodes.length} nodes, ${req.edges.length} edges in ${ms.toFixed(0)} ms`);
  assert.equal(Object.keys(p).length, req.nodes.length);
  for (const e of req.edges) assert.ok(p[e.from].x < p[e.to].x, `${e.from} -> ${e.to}`);
  assert.ok(ms < 15000, `${ms} ms: the layout is no longer near-linear`);
});
