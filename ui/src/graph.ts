// graph.ts draws the model with Cytoscape.js: layered left-to-right layout
// computed by dagre in a worker, runs optionally collapsed to one node.
import cytoscape, { type Core, type ElementDefinition } from "cytoscape";
import type { LineageEdge, LineageNode } from "./api";
import type { LayoutRequest, LayoutResponse } from "./layout-worker";
import type { Model } from "./model";

export const edgeLabels: Record<string, string> = {
  EDGE_KIND_INPUT: "reads",
  EDGE_KIND_OUTPUT: "writes",
  EDGE_KIND_FIELD: "transforms",
  EDGE_KIND_APPROVES: "approves",
  EDGE_KIND_OVERRIDES: "overrides",
  EDGE_KIND_STEP_OF_RUN: "step of run",
  EDGE_KIND_PARENT_RUN: "parent run",
  EDGE_KIND_MATCHES: "same data",
};

export function opName(op?: string): string {
  return (op ?? "").replace(/^OPERATION_/, "").toLowerCase().replace(/_/g, " ");
}

function short(s: string, n = 34): string {
  return s.length <= n ? s : "…" + s.slice(s.length - n + 1);
}

export function nodeLabel(n: LineageNode): string {
  switch (n.kind) {
    case "NODE_KIND_ASSET": {
      const a = n.asset ?? { uri: "" };
      const uri = n.masked && !a.uri ? "(masked)" : a.uri;
      return short(uri) + (a.recordKey ? `\n#${a.recordKey}` : "");
    }
    case "NODE_KIND_ACTIVITY": {
      const op = opName(n.operation);
      const mark = n.operation === "OPERATION_APPROVAL" ? "✔ " : n.operation === "OPERATION_OVERRIDE" ? "⚠ " : "";
      return `${mark}${op}\n${short(n.stepId || n.eventId || "", 28)}`;
    }
    case "NODE_KIND_RUN":
      return `run\n${short(n.runId ?? "", 28)}`;
  }
  return n.id;
}

function nodeClasses(n: LineageNode, m: Model): string {
  const c: string[] = [];
  if (n.kind === "NODE_KIND_ASSET") c.push("asset");
  else if (n.kind === "NODE_KIND_RUN") c.push("run");
  else {
    c.push("activity");
    if (n.operation === "OPERATION_APPROVAL") c.push("approval");
    if (n.operation === "OPERATION_OVERRIDE") c.push("override");
    if (n.operation === "OPERATION_RUN_FAIL") c.push("failrun");
  }
  if (n.masked) c.push("masked");
  const st = m.nodeStatus(n.id).status;
  c.push(`proof-${st}`);
  return c.join(" ");
}

const style: cytoscape.StylesheetJson = [
  {
    selector: "node",
    style: {
      label: "data(label)",
      "text-wrap": "wrap",
      "text-valign": "center",
      "text-halign": "center",
      "font-size": 12,
      "font-family": "system-ui, sans-serif",
      color: "#111827",
      width: 190,
      height: 44,
      "border-width": 1.5,
      "min-zoomed-font-size": 4,
    },
  },
  { selector: "node.asset", style: { shape: "round-rectangle", "background-color": "#dbeafe", "border-color": "#1d4ed8" } },
  { selector: "node.activity", style: { shape: "ellipse", "background-color": "#f3f4f6", "border-color": "#374151", width: 170 } },
  {
    selector: "node.approval",
    style: { shape: "diamond", "background-color": "#fde68a", "border-color": "#92400e", "border-width": 3, width: 190, height: 70, "font-weight": "bold" },
  },
  { selector: "node.override", style: { shape: "octagon", "background-color": "#fecaca", "border-color": "#991b1b", "border-width": 3, "font-weight": "bold" } },
  { selector: "node.failrun", style: { "border-style": "dashed", "border-color": "#991b1b" } },
  { selector: "node.run", style: { shape: "barrel", "background-color": "#e5e7eb", "border-color": "#4b5563" } },
  { selector: "node.collapsed", style: { "background-color": "#d1fae5", "border-color": "#065f46", "border-width": 3 } },
  { selector: "node.gap", style: { shape: "tag", "background-color": "#fff1f2", "border-color": "#b91c1c", "border-style": "dashed", "border-width": 2, color: "#7f1d1d" } },
  { selector: "node.masked", style: { "background-color": "#e5e7eb", "border-style": "dotted" } },
  { selector: "node.proof-failed", style: { "border-color": "#b91c1c", "border-width": 4, "border-style": "double" } },
  { selector: "node.start", style: { "border-width": 4, "border-color": "#047857" } },
  { selector: "node:selected", style: { "overlay-color": "#2563eb", "overlay-opacity": 0.25, "overlay-padding": 6 } },
  {
    selector: "edge",
    style: {
      width: 1.5,
      "curve-style": "bezier",
      "target-arrow-shape": "triangle",
      "line-color": "#6b7280",
      "target-arrow-color": "#6b7280",
      "arrow-scale": 0.8,
    },
  },
  { selector: "edge.EDGE_KIND_OUTPUT", style: { "line-color": "#1e3a8a", "target-arrow-color": "#1e3a8a" } },
  { selector: "edge.EDGE_KIND_FIELD", style: { "line-style": "dotted", "line-color": "#6d28d9", "target-arrow-color": "#6d28d9" } },
  { selector: "edge.EDGE_KIND_APPROVES", style: { width: 3, "line-style": "dashed", "line-color": "#b45309", "target-arrow-color": "#b45309", label: "approves", "font-size": 8 } },
  { selector: "edge.EDGE_KIND_OVERRIDES", style: { width: 3, "line-style": "dashed", "line-color": "#b91c1c", "target-arrow-color": "#b91c1c", label: "overrides", "font-size": 8 } },
  { selector: "edge.EDGE_KIND_STEP_OF_RUN", style: { width: 1, "line-color": "#d1d5db", "target-arrow-color": "#d1d5db" } },
  { selector: "edge.EDGE_KIND_PARENT_RUN", style: { "line-style": "dashed" } },
  { selector: "edge.EDGE_KIND_MATCHES", style: { "line-style": "dotted", "line-color": "#9ca3af", "target-arrow-shape": "none" } },
  { selector: "edge.gapedge", style: { "line-style": "dashed", "line-color": "#b91c1c", "target-arrow-color": "#b91c1c" } },
  { selector: "edge.proof-failed", style: { "line-color": "#b91c1c", width: 3 } },
  { selector: "node.nolabel", style: { label: "" } },
  { selector: "edge.cheap", style: { "curve-style": "haystack", "haystack-radius": 0, label: "", "target-arrow-shape": "none" } },
];

// largeElements is where drawing switches to cheap edges.
const largeElements = 1200;
const maxLabelled = 250;
// drawChunk elements are added to the drawing at a time.
const drawChunk = 250;

export interface ViewOptions {
  collapseRuns: boolean;
  showFieldEdges: boolean;
}

// runNodeId is the id the lineage index gives a run node.
export function runNodeId(runId: string): string {
  return `run:${JSON.stringify(runId)}`;
}

export class Graph {
  cy: Core;
  private worker: Worker;
  private seq = 0;
  onLayout: (ms: number, n: number, engine: string) => void = () => {};
  startIds = new Set<string>();
  private pending: ElementDefinition[] = [];
  drawWallMs = 0;
  // large is set when the drawing is in its cheap mode: no labels but on
  // the nodes in view when few enough are.
  private large = false;
  applyMs = 0;

  constructor(container: HTMLElement, workerURL: string) {
    this.cy = cytoscape({
      container,
      style,
      wheelSensitivity: 0.3,
      minZoom: 0.05,
      maxZoom: 3,
      boxSelectionEnabled: false,
      selectionType: "single",
      textureOnViewport: true,
      hideEdgesOnViewport: true,
      pixelRatio: 1,
    });
    this.worker = new Worker(workerURL);
    let timer = 0;
    this.cy.on("viewport", () => {
      if (!this.large) return;
      clearTimeout(timer);
      timer = window.setTimeout(() => this.labelInView(), 150);
    });
    this.worker.onmessage = (ev: MessageEvent<LayoutResponse>) => void this.applyLayout(ev.data);
  }

  // render replaces the drawing with the model, under the view options.
  render(m: Model, opts: ViewOptions): void {
    const els: ElementDefinition[] = [];
    const repr = new Map<string, string>(); // model node id -> drawn node id
    const runsShown = new Set<string>();
    for (const n of m.nodes.values()) {
      if (opts.collapseRuns && n.kind === "NODE_KIND_ACTIVITY" && n.runId) {
        const rid = runNodeId(n.runId);
        repr.set(n.id, rid);
        runsShown.add(n.runId);
        continue;
      }
      repr.set(n.id, n.id);
    }
    const collapsedCount = new Map<string, number>();
    if (opts.collapseRuns) for (const n of m.nodes.values()) if (n.kind === "NODE_KIND_ACTIVITY" && n.runId) collapsedCount.set(n.runId, (collapsedCount.get(n.runId) ?? 0) + 1);
    for (const n of m.nodes.values()) {
      if (repr.get(n.id) !== n.id) continue;
      let cls = nodeClasses(n, m);
      let label = nodeLabel(n);
      if (n.kind === "NODE_KIND_RUN" && collapsedCount.has(n.runId ?? "")) {
        cls += " collapsed";
        label += `\n(${collapsedCount.get(n.runId ?? "")} steps)`;
      }
      if (this.startIds.has(n.id)) cls += " start";
      els.push({ group: "nodes", data: { id: n.id, label }, classes: cls });
    }
    for (const runId of runsShown) {
      const rid = runNodeId(runId);
      if (m.nodes.has(rid)) continue;
      els.push({ group: "nodes", data: { id: rid, label: `run\n${short(runId, 28)}\n(${collapsedCount.get(runId)} steps)` }, classes: "run collapsed proof-unchecked" });
    }
    const seen = new Set<string>();
    for (const e of m.edges.values()) {
      if (!opts.showFieldEdges && e.kind === "EDGE_KIND_FIELD") continue;
      const from = repr.get(e.from);
      const to = repr.get(e.to);
      if (!from || !to || from === to) continue;
      if (opts.collapseRuns && e.kind === "EDGE_KIND_STEP_OF_RUN") continue;
      const key = `${from}\u0000${to}\u0000${e.kind}`;
      if (opts.collapseRuns && seen.has(key)) continue;
      seen.add(key);
      const id = `e${seen.size}:${key}`;
      els.push({ group: "edges", data: { id, source: from, target: to, edge: e }, classes: `${e.kind} proof-${m.edgeStatus(e).status}` });
    }
    // Gaps: a node per gap, pointing at the drawn nodes of its leaves.
    const byLeaf = new Map<string, string[]>();
    for (const n of m.nodes.values()) {
      const r = repr.get(n.id);
      if (!r) continue;
      const l = byLeaf.get(n.leafIndex) ?? [];
      if (!l.includes(r)) l.push(r);
      byLeaf.set(n.leafIndex, l);
    }
    m.gaps.forEach((g, i) => {
      const gid = `gap:${i}`;
      els.push({ group: "nodes", data: { id: gid, label: `gap: ${g.kind}\n${short(g.detail, 30)}` }, classes: "gap" });
      for (const li of g.leafIndexes ?? []) {
        for (const target of byLeaf.get(String(li)) ?? []) {
          els.push({ group: "edges", data: { id: `${gid}->${target}`, source: gid, target }, classes: "gapedge" });
        }
      }
    });
    // Lay out first (in the worker), then draw: elements are added with
    // their positions, in chunks, so the page keeps answering while 2,000
    // nodes appear.
    const seq = ++this.seq;
    this.pending = els;
    const req: LayoutRequest = {
      seq,
      nodes: els.filter((e) => e.group === "nodes").map((e) => ({ id: e.data.id as string, w: 200, h: (e.classes ?? "").includes("approval") ? 74 : 50 })),
      edges: els.filter((e) => e.group === "edges").map((e) => ({ from: e.data.source as string, to: e.data.target as string })),
    };
    this.worker.postMessage(req);
  }

  // labelInView gives labels to the nodes in view when at most
  // maxLabelled are, and takes them from the others.
  private labelInView(): void {
    const cy = this.cy;
    const ext = cy.extent();
    const inView = cy.nodes().filter((n) => {
      const p = n.position();
      return p.x >= ext.x1 && p.x <= ext.x2 && p.y >= ext.y1 && p.y <= ext.y2;
    });
    cy.batch(() => {
      cy.nodes().addClass("nolabel");
      if (inView.length <= maxLabelled) inView.removeClass("nolabel");
    });
  }

  private async applyLayout(r: LayoutResponse): Promise<void> {
    if (r.seq !== this.seq) return; // a newer render is under way
    const t0 = performance.now();
    const cy = this.cy;
    const els = this.pending;
    const large = els.length > largeElements;
    this.large = large;
    for (const e of els) {
      if (e.group === "nodes") e.position = r.positions[e.data.id as string] ?? { x: 0, y: 0 };
      if (large) e.classes = `${e.classes ?? ""} ${e.group === "nodes" ? "nolabel" : "cheap"}`;
    }
    cy.resize(); // the container may have changed size since the last draw
    cy.elements().remove();
    const nodes = els.filter((e) => e.group === "nodes");
    const edges = els.filter((e) => e.group === "edges");
    let busy = 0;
    for (const part of [nodes, edges]) {
      for (let i = 0; i < part.length; i += drawChunk) {
        const t = performance.now();
        cy.add(part.slice(i, i + drawChunk));
        if (i === 0 && part === nodes) cy.fit(undefined, 30);
        busy += performance.now() - t;
        await new Promise((res) => setTimeout(res, 0));
        if (r.seq !== this.seq) return;
      }
    }
    cy.fit(undefined, 30);
    this.applyMs = busy;
    this.drawWallMs = performance.now() - t0;
    this.onLayout(r.ms, cy.nodes().length, r.engine);
  }
}

export function edgeOf(data: { edge?: LineageEdge }): LineageEdge | undefined {
  return data.edge;
}
