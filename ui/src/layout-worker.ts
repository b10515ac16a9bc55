// layout-worker.ts computes the layered (Sugiyama-style) left-to-right
// layout off the main thread, so the page never freezes while a large graph
// is laid out. Up to dagreMaxNodes nodes it uses dagre (network-simplex
// ranking, crossing minimisation, Brandes-Köpf coordinates); dagre's cost
// grows far faster than linearly (minutes at 2,000 nodes), so larger graphs
// get fastLayered: longest-path ranks and barycenter ordering, linear per
// sweep.
import dagre from "@dagrejs/dagre";

export interface LayoutRequest {
  seq: number;
  nodes: { id: string; w: number; h: number }[];
  edges: { from: string; to: string }[];
}

export interface LayoutResponse {
  seq: number;
  positions: Record<string, { x: number; y: number }>;
  ms: number;
  engine: "dagre" | "fast";
}

export const dagreMaxNodes = 400;
const rankSep = 70;
const nodeSep = 18;

function dagreLayout(req: LayoutRequest): Record<string, { x: number; y: number }> {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: nodeSep, ranksep: rankSep, edgesep: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of req.nodes) g.setNode(n.id, { width: n.w, height: n.h });
  for (const e of req.edges) if (e.from !== e.to) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const positions: Record<string, { x: number; y: number }> = {};
  for (const id of g.nodes()) {
    const n = g.node(id);
    positions[id] = { x: n.x, y: n.y };
  }
  return positions;
}

// fastLayered lays a graph out in ranks (columns) left to right.
export function fastLayered(req: LayoutRequest): Record<string, { x: number; y: number }> {
  const n = req.nodes.length;
  const idx = new Map<string, number>();
  req.nodes.forEach((node, i) => idx.set(node.id, i));
  const out: number[][] = Array.from({ length: n }, () => []);
  const inn: number[][] = Array.from({ length: n }, () => []);
  // Drop edges that close a cycle (DFS back edges), so ranks exist.
  const adj: number[][] = Array.from({ length: n }, () => []);
  for (const e of req.edges) {
    const a = idx.get(e.from);
    const b = idx.get(e.to);
    if (a === undefined || b === undefined || a === b) continue;
    adj[a].push(b);
  }
  const state = new Uint8Array(n); // 0 new, 1 on stack, 2 done
  for (let s = 0; s < n; s++) {
    if (state[s]) continue;
    const stack: [number, number][] = [[s, 0]];
    state[s] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, i] = top;
      if (i < adj[v].length) {
        top[1]++;
        const w = adj[v][i];
        if (state[w] === 1) continue; // back edge: dropped
        out[v].push(w);
        inn[w].push(v);
        if (state[w] === 0) {
          state[w] = 1;
          stack.push([w, 0]);
        }
      } else {
        state[v] = 2;
        stack.pop();
      }
    }
  }
  // Longest-path ranks in topological order.
  const rank = new Int32Array(n);
  const indeg = inn.map((l) => l.length);
  const queue: number[] = [];
  for (let v = 0; v < n; v++) if (indeg[v] === 0) queue.push(v);
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q];
    for (const w of out[v]) {
      rank[w] = Math.max(rank[w], rank[v] + 1);
      if (--indeg[w] === 0) queue.push(w);
    }
  }
  // Pull sources right, next to their first consumer, so inputs sit by
  // the step that reads them instead of all in column 0.
  for (let q = queue.length - 1; q >= 0; q--) {
    const v = queue[q];
    if (inn[v].length === 0 && out[v].length > 0) rank[v] = Math.min(...out[v].map((w) => rank[w])) - 1;
  }
  const maxRank = n ? Math.max(...rank) : 0;
  const ranks: number[][] = Array.from({ length: maxRank + 1 }, () => []);
  for (const v of queue) ranks[rank[v]].push(v);
  const pos = new Float64Array(n);
  const renumber = (r: number[]) => r.forEach((v, i) => (pos[v] = i));
  ranks.forEach(renumber);
  const bary = (v: number, nbrs: number[]) => (nbrs.length ? nbrs.reduce((s, w) => s + pos[w], 0) / nbrs.length : pos[v]);
  for (let sweep = 0; sweep < 8; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? ranks : [...ranks].reverse();
    for (const r of order) {
      const key = new Map<number, number>();
      for (const v of r) key.set(v, bary(v, down ? inn[v] : out[v]));
      r.sort((a, b) => key.get(a)! - key.get(b)! || pos[a] - pos[b]);
      renumber(r);
    }
  }
  const h = Math.max(...req.nodes.map((x) => x.h), 1);
  const w = Math.max(...req.nodes.map((x) => x.w), 1);
  const tallest = Math.max(...ranks.map((r) => r.length), 1);
  const positions: Record<string, { x: number; y: number }> = {};
  ranks.forEach((r, ri) => {
    const offset = ((tallest - r.length) * (h + nodeSep)) / 2;
    r.forEach((v, i) => {
      positions[req.nodes[v].id] = { x: ri * (w + rankSep), y: offset + i * (h + nodeSep) };
    });
  });
  return positions;
}

self.onmessage = (ev: MessageEvent<LayoutRequest>) => {
  const t0 = performance.now();
  const big = ev.data.nodes.length > dagreMaxNodes;
  const positions = big ? fastLayered(ev.data) : dagreLayout(ev.data);
  const resp: LayoutResponse = { seq: ev.data.seq, positions, ms: performance.now() - t0, engine: big ? "fast" : "dagre" };
  (self as unknown as Worker).postMessage(resp);
};
