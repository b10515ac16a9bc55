// layout-worker.ts computes the layered (Sugiyama) layout with dagre off
// the main thread, so a 2,000-node graph never freezes the page.
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
}

self.onmessage = (ev: MessageEvent<LayoutRequest>) => {
  const t0 = performance.now();
  const { seq, nodes, edges } = ev.data;
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 70, edgesep: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: n.w, height: n.h });
  for (const e of edges) if (e.from !== e.to) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const positions: Record<string, { x: number; y: number }> = {};
  for (const id of g.nodes()) {
    const n = g.node(id);
    positions[id] = { x: n.x, y: n.y };
  }
  const resp: LayoutResponse = { seq, positions, ms: performance.now() - t0 };
  (self as unknown as Worker).postMessage(resp);
};
