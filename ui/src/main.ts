// main.ts wires the lineage explorer: sign-in, search, graph, details.
import * as api from "./api";
import type { LineageEdge, LineageNode, Start, TraceFilter } from "./api";
import { Graph, edgeLabels, nodeLabel, opName } from "./graph";
import { type LeafStatus, Model, proofResult } from "./model";
import { decodeLeaf, opensCommitment } from "./claims";
import { type LeafProofsJSON, type Policy, type ProofResult, b64decode, hex, parsePolicy } from "./verify";
import type { VerifyRequest, VerifyResponse } from "./verify-worker";

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
};

const pinnedKeyStore = "provlog.pinnedLogKey";
const pinnedPolicyStore = "provlog.pinnedWitnessPolicy";
const sessionKeyStore = "provlog.logKey";
const sessionPolicyStore = "provlog.witnessPolicy";
const tenantStore = "provlog.tenant";

let cfg: api.UIConfig = {};
let policy: Policy | null = null;
let keySource = "";
const model = new Model();
let graph: Graph | null = null;
let selected: string | null = null;
let policyText = { key: "", witnesses: "" };

// verify checks an answer's proofs in a worker under the current policy.
let verifier: Worker | null = null;
let verifySeq = 0;
const verifyWaiting = new Map<number, (r: VerifyResponse) => void>();
function verify(answer: { proofs?: LeafProofsJSON; nodes?: LineageNode[]; edges?: LineageEdge[] }): Promise<ReturnType<typeof proofResult> | null> {
  if (!policy) return Promise.resolve(null);
  if (!verifier) {
    verifier = new Worker(new URL("verify-worker.js", window.location.href).toString());
    verifier.onmessage = (ev: MessageEvent<VerifyResponse>) => {
      verifyWaiting.get(ev.data.seq)?.(ev.data);
      verifyWaiting.delete(ev.data.seq);
    };
  }
  const seq = ++verifySeq;
  const req: VerifyRequest = { seq, logKey: policyText.key, witnessPolicy: policyText.witnesses, proofs: answer.proofs, tenant: tenant(), nodes: answer.nodes ?? [], edges: answer.edges ?? [] };
  return new Promise((resolve) => {
    verifyWaiting.set(seq, (r) => resolve(proofResult(r)));
    verifier!.postMessage(req);
  });
}

function text(el: HTMLElement, s: string): void {
  el.textContent = s;
}

function setStatus(s: string, state: "idle" | "loading" | "ready" | "error" = "ready"): void {
  const el = $("status");
  text(el, s);
  el.dataset.state = state;
}

// ---- sign-in ----

async function init(): Promise<void> {
  cfg = await api.config();
  if (api.token()) {
    try {
      loadPolicy(sessionStorage.getItem(sessionKeyStore) ?? "", sessionStorage.getItem(sessionPolicyStore) ?? "");
    } catch {
      policy = null;
    }
    showApp();
  } else {
    showSignin();
  }
}

function showSignin(): void {
  $("app").hidden = true;
  $("signin").hidden = false;
  const pinned = localStorage.getItem(pinnedKeyStore);
  const key = $<HTMLTextAreaElement>("logkey");
  key.value = pinned ?? cfg.logKey ?? "";
  $<HTMLTextAreaElement>("witness-policy").value = localStorage.getItem(pinnedPolicyStore) ?? "";
  $<HTMLInputElement>("pin-key").checked = pinned !== null;
  const note = $("key-note");
  if (pinned && cfg.logKey && pinned.trim() !== cfg.logKey.trim()) {
    text(note, `Warning: the key pinned in this browser differs from the key this server announces (${cfg.logKey}). Proofs are checked against the pinned key.`);
    note.className = "warn";
  } else if (pinned) {
    text(note, "This key is pinned in this browser.");
    note.className = "";
  } else if (cfg.logKey) {
    text(note, "Prefilled from this server's /ui/config.json. A server can announce any key: compare it with the log.pub you got out of band, then pin it.");
    note.className = "";
  } else {
    text(note, "Paste the log's verifier key (log.pub) to check proofs; without it, proofs are not checked.");
  }
  $<HTMLInputElement>("tenant").value = sessionStorage.getItem(tenantStore) ?? "";
  $<HTMLInputElement>("token").focus();
}

function loadPolicy(key: string, witnesses: string): void {
  policy = key.trim() === "" ? null : parsePolicy(key, witnesses);
  policyText = { key, witnesses };
  const pinned = localStorage.getItem(pinnedKeyStore);
  if (!policy) keySource = "no log key: proofs are not checked";
  else {
    const id = `${policy.log.name}+${policy.log.keyHash.toString(16).padStart(8, "0")}`;
    const src = pinned && pinned.trim() === key.trim() ? "pinned in this browser" : cfg.logKey && cfg.logKey.trim() === key.trim() ? "announced by this server" : "entered at sign-in";
    const w = policy.quorum ? `; witness quorum of ${policy.witnessNames.join(", ")}` : "; no witness policy";
    keySource = `log key ${id} (${src})${w}`;
  }
}

async function signIn(ev: Event): Promise<void> {
  ev.preventDefault();
  const err = $("signin-error");
  text(err, "");
  const tok = $<HTMLInputElement>("token").value.trim();
  const tenant = $<HTMLInputElement>("tenant").value.trim();
  const key = $<HTMLTextAreaElement>("logkey").value.trim();
  const wp = $<HTMLTextAreaElement>("witness-policy").value;
  if (!tok || !tenant) {
    text(err, "Token and tenant are required.");
    return;
  }
  try {
    loadPolicy(key, wp);
  } catch (e) {
    text(err, `Log key or witness policy: ${(e as Error).message}`);
    return;
  }
  api.setToken(tok);
  try {
    // Any authenticated read tells a bad token (401) from a good one; a run
    // that does not exist is NotFound.
    await api.runEvents(tenant, "provlog-ui-sign-in-check");
  } catch (e) {
    if (e instanceof api.APIError && e.status === 401) {
      api.setToken(null);
      text(err, "The token was not accepted.");
      return;
    }
    if (!(e instanceof api.APIError) || (e.status !== 404 && e.status !== 403)) {
      api.setToken(null);
      text(err, `Could not reach provlogd: ${(e as Error).message}`);
      return;
    }
  }
  sessionStorage.setItem(tenantStore, tenant);
  sessionStorage.setItem(sessionKeyStore, key);
  sessionStorage.setItem(sessionPolicyStore, wp);
  if ($<HTMLInputElement>("pin-key").checked && key) {
    localStorage.setItem(pinnedKeyStore, key);
    localStorage.setItem(pinnedPolicyStore, wp);
  } else {
    localStorage.removeItem(pinnedKeyStore);
    localStorage.removeItem(pinnedPolicyStore);
  }
  loadPolicy(key, wp);
  $<HTMLInputElement>("token").value = "";
  showApp();
}

function signOut(): void {
  api.setToken(null);
  sessionStorage.removeItem(sessionKeyStore);
  sessionStorage.removeItem(sessionPolicyStore);
  model.clear();
  graph?.cy.elements().remove();
  $("runs").replaceChildren();
  $("runs-section").hidden = true;
  showSignin();
}

function showApp(): void {
  $("signin").hidden = true;
  $("app").hidden = false;
  const tenant = sessionStorage.getItem(tenantStore) ?? "";
  $<HTMLInputElement>("search-tenant").value = tenant;
  text($("who"), `tenant ${tenant}`);
  text($("keyinfo"), keySource);
  if (!graph) {
    graph = new Graph($("cy"), new URL("layout-worker.js", window.location.href).toString());
    graph.onLayout = (ms, n, engine) => {
      $("cy").dataset.layout = "done";
      $("cy").dataset.layoutEngine = engine;
      $("cy").dataset.nodes = String(n);
      $("cy").dataset.layoutMs = String(Math.round(ms));
      $("cy").dataset.applyMs = String(Math.round(graph?.applyMs ?? 0));
      const t = performance.now();
      requestAnimationFrame(() => requestAnimationFrame(() => ($("cy").dataset.frameMs = String(Math.round(performance.now() - t)))));
      if (selected) graph?.cy.getElementById(selected).select();
    };
    graph.cy.on("tap", "node", (e) => select(e.target.id()));
    graph.cy.on("tap", "edge", (e) => showEdge(e.target.data("edge") as LineageEdge | undefined));
  }
  $<HTMLInputElement>("search-value").focus();
}

// ---- search and expand ----

function filterFromForm(): TraceFilter {
  const list = (id: string) =>
    $<HTMLInputElement>(id)
      .value.split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  const time = (id: string) => {
    const v = $<HTMLInputElement>(id).value;
    return v ? new Date(v).toISOString() : undefined;
  };
  const ops = Array.from($<HTMLSelectElement>("f-operation").selectedOptions, (o) => o.value).filter((v) => v !== "");
  return { since: time("f-since"), until: time("f-until"), actorIds: list("f-actor"), workflowIds: list("f-workflow"), operations: ops, classifications: list("f-classification") };
}

function tenant(): string {
  return $<HTMLInputElement>("search-tenant").value.trim();
}

async function runTrace(start: Start, direction: string, depth: number, replace: boolean): Promise<void> {
  const t = tenant();
  if (!t) {
    setStatus("Tenant is required.", "error");
    return;
  }
  setStatus("Loading…", "loading");
  $("cy").dataset.layout = "pending";
  try {
    const t0 = performance.now();
    const resp = await api.trace(api.traceParams(t, start, direction, depth, filterFromForm()));
    const t1 = performance.now();
    if (replace) {
      model.clear();
      selected = null;
      graph!.startIds.clear();
    }
    const res = await verify(resp);
    model.merge(resp, res);
    const t2 = performance.now();
    if ("runId" in start) {
      try {
        const re = await api.runEvents(t, start.runId);
        model.merge({ gaps: re.gaps }, null);
        // The run's own answer proves its leaves too.
        model.merge({}, await verify({ proofs: re.proofs }));
      } catch {
        /* gaps of the run are a bonus; the trace stands */
      }
    }
    const startNode = (resp.nodes ?? []).find((n) => matchesStart(n, start));
    if (startNode) graph!.startIds.add(startNode.id);
    render();
    const t3 = performance.now();
    // Where the time went, for the large-graph test and the curious.
    $("status").dataset.timing = JSON.stringify({ fetchMs: Math.round(t1 - t0), verifyMs: Math.round(t2 - t1), drawMs: Math.round(t3 - t2) });
    let proofs = "proofs not checked (no log key)";
    if (res) {
      const vals = [...res.leaves.values()];
      const ok = vals.filter((v) => v === "").length;
      proofs = res.checkpointError
        ? `proofs FAILED: ${res.checkpointError}`
        : `${ok} of ${vals.length} leaf proofs verified against checkpoint of size ${res.checkpoint?.size}` + (ok < vals.length ? `; ${vals.length - ok} FAILED` : "");
    }
    setStatus(`${resp.nodes?.length ?? 0} nodes, ${resp.edges?.length ?? 0} edges${resp.truncated ? " (truncated)" : ""}; ${proofs}.`);
    updateAnswerBadge();
    if (startNode && replace) select(startNode.id);
    else if (selected) select(selected);
  } catch (e) {
    if (e instanceof api.APIError && e.status === 404) setStatus("Nothing found (or nothing this token may see).", "error");
    else if (e instanceof api.APIError && e.status === 401) {
      setStatus("Session expired: sign in again.", "error");
      signOut();
    } else setStatus(`Error: ${(e as Error).message}`, "error");
    $("cy").dataset.layout = "error";
  }
}

function matchesStart(n: LineageNode, s: Start): boolean {
  if ("asset" in s) return n.kind === "NODE_KIND_ASSET" && n.asset?.uri === s.asset.uri && (n.asset?.recordKey ?? "") === (s.asset.recordKey ?? "") && (!s.asset.version || n.asset?.version === s.asset.version);
  if ("eventId" in s) return n.kind === "NODE_KIND_ACTIVITY" && n.eventId === s.eventId;
  return n.kind === "NODE_KIND_RUN" && n.runId === s.runId;
}

function search(ev: Event): void {
  ev.preventDefault();
  const kind = $<HTMLSelectElement>("search-kind").value;
  const v = $<HTMLInputElement>("search-value").value.trim();
  const rk = $<HTMLInputElement>("search-record").value.trim();
  if (!v) {
    setStatus("Enter what to search for.", "error");
    return;
  }
  let start: Start;
  switch (kind) {
    case "record":
      if (!rk) {
        setStatus("A record key search needs the asset URI and the record key.", "error");
        return;
      }
      start = { asset: { uri: v, recordKey: rk } };
      break;
    case "event":
      start = { eventId: v };
      break;
    case "run":
      start = { runId: v };
      break;
    case "workflow":
      void searchWorkflow(v);
      return;
    default:
      start = { asset: { uri: v } };
  }
  const depth = parseInt($<HTMLSelectElement>("search-depth").value, 10);
  void runTrace(start, $<HTMLSelectElement>("search-direction").value, depth, true);
}

// At most this many runs of a workflow are listed (pages of 100).
const maxRuns = 500;

// searchWorkflow lists the runs of a workflow, newest first, each with the
// proof status of its first and last leaves (verified in the browser, and
// naming the run); choosing one traces the run.
async function searchWorkflow(wf: string): Promise<void> {
  const t = tenant();
  if (!t) {
    setStatus("Tenant is required.", "error");
    return;
  }
  setStatus("Loading…", "loading");
  const ul = $("runs");
  ul.replaceChildren();
  text($("runs-workflow"), wf);
  text($("runs-count"), "0");
  $("runs-section").hidden = false;
  try {
    const runs: api.WorkflowRun[] = [];
    const proven = new Map<string, string>(); // run id -> "" when both its leaves verify and name it, else why not
    let token = "";
    do {
      const resp = await api.workflowRuns(t, wf, token);
      const res = await verify({ proofs: resp.proofs });
      for (const r of resp.runs ?? []) {
        runs.push(r);
        proven.set(r.runId, res ? runProof(r, res) : "not checked (no log key)");
      }
      token = resp.nextPageToken ?? "";
    } while (token && runs.length < maxRuns);
    runs.sort((a, b) => (b.startTime ?? "").localeCompare(a.startTime ?? "") || a.runId.localeCompare(b.runId));
    for (const r of runs) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "result run";
      const status = (r.status ?? "RUN_STATUS_UNSPECIFIED").replace("RUN_STATUS_", "").toLowerCase();
      const why = proven.get(r.runId) ?? "";
      const proof = why === "" ? "verified" : why.startsWith("not checked") ? "unchecked" : "failed";
      b.dataset.run = r.runId;
      b.dataset.status = status;
      b.dataset.proof = proof;
      b.textContent = `${proof === "verified" ? "✔" : proof === "failed" ? "✘" : "?"} ${r.runId} · ${status}${r.started ? "" : " (no start)"} · ${r.eventCount ?? "0"} events${r.startTime ? " · " + r.startTime : ""}`;
      b.title = why === "" ? `leaves ${r.firstLeafIndex ?? "0"}..${r.lastLeafIndex ?? "0"}, proofs verified` : why;
      b.setAttribute("aria-label", `run ${r.runId}, ${status}, ${r.eventCount ?? "0"} events, proof ${proof}`);
      b.addEventListener("click", () => {
        $<HTMLSelectElement>("search-kind").value = "run";
        $<HTMLInputElement>("search-value").value = r.runId;
        const depth = parseInt($<HTMLSelectElement>("search-depth").value, 10);
        void runTrace({ runId: r.runId }, $<HTMLSelectElement>("search-direction").value, depth, true);
      });
      li.append(b);
      ul.append(li);
    }
    text($("runs-count"), String(runs.length));
    const bad = [...proven.values()].filter((w) => w !== "" && !w.startsWith("not checked")).length;
    setStatus(`${runs.length} runs of workflow ${wf}${token ? " (more not listed)" : ""}${bad ? `; ${bad} run proofs FAILED` : ""}. Choose a run to trace it.`, "ready");
    (ul.querySelector("button") as HTMLButtonElement | null)?.focus();
  } catch (e) {
    $("runs-section").hidden = true;
    if (e instanceof api.APIError && e.status === 404) setStatus("Nothing found (or nothing this token may see).", "error");
    else if (e instanceof api.APIError && e.status === 401) {
      setStatus("Session expired: sign in again.", "error");
      signOut();
    } else setStatus(`Error: ${(e as Error).message}`, "error");
  }
}

// runProof is "" when a run's first and last leaves are proven and their
// events belong to the run and the tenant, else why not.
function runProof(r: api.WorkflowRun, res: ReturnType<typeof proofResult>): string {
  if (res.checkpointError) return `checkpoint: ${res.checkpointError}`;
  for (const idx of [r.firstLeafIndex ?? "0", r.lastLeafIndex ?? "0"]) {
    const why = res.leaves.get(idx);
    if (why === undefined) return `leaf ${idx} is not proven by the answer`;
    if (why !== "") return `leaf ${idx}: ${why}`;
    const b = res.leafBytes.get(idx);
    if (!b) return `leaf ${idx}: no bytes`;
    try {
      const ev = decodeLeaf(b);
      if (ev.runId !== r.runId) return `leaf ${idx} is of run ${ev.runId}, not ${r.runId}`;
      if (ev.tenant !== tenant()) return `leaf ${idx} is of tenant ${ev.tenant}`;
    } catch (e) {
      return `leaf ${idx}: ${(e as Error).message}`;
    }
  }
  return "";
}

function startOf(n: LineageNode): Start {
  if (n.kind === "NODE_KIND_ASSET") return { asset: { uri: n.asset?.uri ?? "", version: n.asset?.version, recordKey: n.asset?.recordKey } };
  if (n.kind === "NODE_KIND_RUN") return { runId: n.runId ?? "" };
  return { eventId: n.eventId ?? "" };
}

function expand(direction: "DIRECTION_UPSTREAM" | "DIRECTION_DOWNSTREAM"): void {
  const n = selected ? model.nodes.get(selected) : undefined;
  if (!n) {
    setStatus("Select a node to expand.", "error");
    return;
  }
  const depth = parseInt($<HTMLSelectElement>("expand-depth").value, 10);
  void runTrace(startOf(n), direction, depth, false);
}

// ---- drawing ----

function render(): void {
  graph!.render(model, { collapseRuns: $<HTMLInputElement>("collapse-runs").checked, showFieldEdges: $<HTMLInputElement>("field-edges").checked });
  renderResults();
  renderGaps();
}

const maxResults = 300;

function renderResults(): void {
  const ul = $("results");
  ul.replaceChildren();
  const nodes = [...model.nodes.values()].sort((a, b) => {
    const ka = a.kind === "NODE_KIND_ASSET" ? 1 : a.kind === "NODE_KIND_RUN" ? 2 : 0;
    const kb = b.kind === "NODE_KIND_ASSET" ? 1 : b.kind === "NODE_KIND_RUN" ? 2 : 0;
    return ka - kb || (a.eventTime ?? "").localeCompare(b.eventTime ?? "") || a.id.localeCompare(b.id);
  });
  for (const n of nodes.slice(0, maxResults)) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "result";
    b.dataset.node = n.id;
    b.dataset.leaf = n.leafIndex;
    if (n.kind === "NODE_KIND_ACTIVITY") b.dataset.operation = n.operation ?? "";
    b.textContent = nodeLabel(n).replace("\n", " · ");
    b.title = fullText(n);
    b.setAttribute("aria-label", `${kindName(n)}: ${fullText(n)}`);
    b.addEventListener("click", () => select(n.id, true));
    li.append(b);
    ul.append(li);
  }
  if (nodes.length > maxResults) {
    const li = document.createElement("li");
    li.textContent = `… and ${nodes.length - maxResults} more in the graph`;
    ul.append(li);
  }
  text($("results-count"), `${model.nodes.size}`);
}

function renderGaps(): void {
  const ul = $("gaps");
  ul.replaceChildren();
  for (const g of model.gaps) {
    const li = document.createElement("li");
    li.textContent = `${g.kind}: ${g.detail}` + (g.leafIndexes?.length ? ` (leaves ${g.leafIndexes.join(", ")})` : "");
    ul.append(li);
  }
  $("gaps-section").hidden = model.gaps.length === 0;
}

// fullText names a node in full, for screen readers and tooltips.
function fullText(n: LineageNode): string {
  if (n.kind === "NODE_KIND_ASSET") return `${n.asset?.uri || "(masked)"}${n.asset?.recordKey ? " record " + n.asset.recordKey : ""}${n.asset?.version ? " version " + n.asset.version : ""}`;
  if (n.kind === "NODE_KIND_RUN") return `run ${n.runId}`;
  return `${opName(n.operation)} ${n.stepId || ""} (event ${n.eventId}, run ${n.runId})`;
}

function kindName(n: LineageNode): string {
  if (n.kind === "NODE_KIND_ASSET") return "asset";
  if (n.kind === "NODE_KIND_RUN") return "run";
  if (n.operation === "OPERATION_APPROVAL") return "human approval";
  if (n.operation === "OPERATION_OVERRIDE") return "human override";
  return "step";
}

function badge(st: LeafStatus): HTMLElement {
  const b = document.createElement("span");
  b.className = `badge ${st.status}`;
  b.dataset.proof = st.status;
  b.textContent = st.status === "verified" ? "✔ proof verified" : st.status === "failed" ? "✘ proof failed" : "? proof not checked";
  b.title = st.why;
  return b;
}

function updateAnswerBadge(): void {
  const el = $("answer-badge");
  let ok = 0,
    bad = 0,
    un = 0;
  for (const n of model.nodes.values()) {
    const s = model.nodeStatus(n.id).status;
    if (s === "verified") ok++;
    else if (s === "failed") bad++;
    else un++;
  }
  el.dataset.proof = bad > 0 ? "failed" : un > 0 ? "unchecked" : "verified";
  el.className = `badge ${el.dataset.proof}`;
  el.textContent = bad > 0 ? `✘ ${bad} node proofs failed` : un > 0 ? `? ${un} nodes not checked` : `✔ all ${ok} node proofs verified`;
}

// ---- details ----

const sensitiveStatus: Record<string, string> = {
  SENSITIVE_STATUS_REVEALED: "revealed",
  SENSITIVE_STATUS_REDACTED: "redacted",
  SENSITIVE_STATUS_SHREDDED: "shredded",
  SENSITIVE_STATUS_ARCHIVED: "archived",
  SENSITIVE_STATUS_UNAVAILABLE: "unavailable",
};

// sensitiveList shows an event's sensitive values exactly as the server
// returned them for this token's role: the value only when revealed,
// "[REDACTED: …]" when masked, "[ERASED: …]" with when and under which
// policy when a retention policy erased it. A revealed value is checked
// against the commitment in the verified leaf (ENCODING.md §11).
function sensitiveList(title: string, source: string, list: api.SensitiveReveal[], st: LeafStatus): HTMLElement {
  const sec = document.createElement("section");
  sec.className = "sensitive";
  sec.dataset.source = source;
  sec.setAttribute("aria-label", title);
  const h = document.createElement("h3");
  h.textContent = title;
  const dl = document.createElement("dl");
  let sealed: ReturnType<typeof decodeLeaf>["sensitive"] = [];
  if (st.leaf) {
    try {
      sealed = decodeLeaf(st.leaf).sensitive;
    } catch {
      sealed = [];
    }
  }
  for (const r of list) {
    const status = sensitiveStatus[r.status ?? ""] ?? "unavailable";
    const dt = document.createElement("dt");
    dt.textContent = `${r.name ?? ""}${r.classification ? ` (${r.classification})` : ""}`;
    const dd = document.createElement("dd");
    dd.dataset.name = r.name ?? "";
    dd.dataset.status = status;
    const v = document.createElement("span");
    v.className = status === "revealed" ? "value" : "masked";
    // What the server says to show; never a value the server did not send.
    v.textContent = r.display || (status === "revealed" ? (r.value ?? "") : `[${status.toUpperCase()}]`);
    dd.append(v);
    const extra: string[] = [];
    if (status === "shredded" || status === "archived") {
      extra.push(`${status} ${r.erasedTime ?? "(time not given)"} under policy ${r.policy || "(not given)"}`);
    } else if (status === "redacted") {
      extra.push("masked for your role");
    } else if (status === "unavailable") {
      extra.push("the log has no value for it");
    }
    if (status === "revealed") {
      const c = sealed.find((x) => x.name === r.name && x.classification === (r.classification ?? ""));
      let check: string;
      if (!st.leaf) check = "not checked: the leaf was not verified";
      else if (!c) check = "FAILED: the verified leaf has no such value";
      else check = opensCommitment(c.commitment, b64decode(r.salt ?? ""), r.value ?? "") ? "opens the commitment in the verified leaf" : "FAILED: does not open the commitment in the verified leaf";
      dd.dataset.commitment = check.startsWith("opens") ? "verified" : check.startsWith("FAILED") ? "failed" : "unchecked";
      extra.push(check);
    }
    if (extra.length) {
      const small = document.createElement("span");
      small.className = "why";
      small.textContent = ` — ${extra.join("; ")}`;
      dd.append(small);
    }
    dl.append(dt, dd);
  }
  sec.append(h, dl);
  return sec;
}

function row(dl: HTMLElement, k: string, v: string | undefined | null, masked = false): void {
  const dt = document.createElement("dt");
  dt.textContent = k;
  const dd = document.createElement("dd");
  if (masked && !v) {
    dd.textContent = "•••• masked for your role";
    dd.className = "masked";
  } else dd.textContent = v || "—";
  dl.append(dt, dd);
}

function select(id: string, center = false): void {
  const n = model.nodes.get(id);
  if (!n || !graph) return;
  selected = id;
  const cy = graph.cy;
  cy.$(":selected").unselect();
  let el = cy.getElementById(id);
  if (el.empty() && n.runId) el = cy.getElementById(`run:${JSON.stringify(n.runId)}`);
  el.select();
  if (center && el.nonempty()) cy.animate({ center: { eles: el }, duration: 150 });
  showNode(n);
}

function showNode(n: LineageNode): void {
  const d = $("detail");
  d.replaceChildren();
  d.dataset.node = n.id;
  d.dataset.kind = kindName(n);
  const h = document.createElement("h2");
  h.textContent = kindName(n) === "step" ? `step: ${opName(n.operation)}` : kindName(n);
  const st = model.nodeStatus(n.id);
  d.append(h, badge(st));
  if (st.why) {
    const p = document.createElement("p");
    p.className = "why";
    p.textContent = st.why;
    d.append(p);
  }
  const dl = document.createElement("dl");
  row(dl, "leaf index", n.leafIndex);
  if (st.checkpoint) row(dl, "checkpoint", `size ${st.checkpoint.size}, root ${hex(st.checkpoint.root).slice(0, 16)}…`);
  row(dl, "checked with", keySource);
  if (n.kind === "NODE_KIND_ASSET") {
    row(dl, "asset URI", n.asset?.uri, n.masked);
    row(dl, "version", n.asset?.version);
    row(dl, "record key", n.asset?.recordKey, n.masked);
    row(dl, "classification", n.classification);
  } else {
    row(dl, "event id", n.eventId);
    row(dl, "operation", opName(n.operation));
    row(dl, "actor", n.actorId, n.masked);
    row(dl, "event time", n.eventTime ?? "");
    row(dl, "workflow", n.workflowId);
    row(dl, "step", n.stepId);
    row(dl, "run", n.runId);
  }
  if (n.masked) row(dl, "masking", "some fields are masked for your role");
  d.append(dl);
  if (n.sensitive?.length) d.append(sensitiveList("sensitive values (lineage answer)", "trace", n.sensitive, st));
  if (n.kind === "NODE_KIND_ACTIVITY") void showEntry(n, st);
}

async function showEntry(n: LineageNode, st: LeafStatus): Promise<void> {
  const box = document.createElement("section");
  box.className = "entry";
  box.setAttribute("aria-label", "event");
  $("detail").append(box);
  try {
    const r = await api.entry(n.leafIndex);
    if ($("detail").dataset.node !== n.id) return;
    const ev = (r.entry?.event ?? {}) as Record<string, any>;
    const note = document.createElement("p");
    note.className = "why";
    const leafB64 = r.leaf;
    const proven = st.leaf ? btoa(String.fromCharCode(...st.leaf)) : null;
    if (proven === null) note.textContent = "Event as decoded by the server; its leaf was not verified here.";
    else if (proven === leafB64) note.textContent = "Event as decoded by the server from the leaf bytes, which match the verified leaf.";
    else {
      note.textContent = "The server's leaf bytes differ from the verified leaf: do not trust the event below.";
      note.className = "why warn";
    }
    const dl = document.createElement("dl");
    const actor = (ev.actor ?? {}) as Record<string, string>;
    row(dl, "actor", [actor.displayName, actor.id, actor.type?.replace("ACTOR_TYPE_", "").toLowerCase()].filter(Boolean).join(" · "));
    if (actor.onBehalfOf) row(dl, "on behalf of", actor.onBehalfOf);
    if (ev.rationale) row(dl, "rationale", String(ev.rationale));
    if (Array.isArray(ev.subjectEventIds)) row(dl, "approves / overrides", ev.subjectEventIds.join(", "));
    for (const [k, list] of [
      ["inputs", ev.inputs],
      ["outputs", ev.outputs],
    ] as const) {
      if (Array.isArray(list) && list.length) row(dl, k, list.map((a: any) => `${a.uri ?? "(masked)"}${a.recordKey ? "#" + a.recordKey : ""}${a.classification ? ` [${a.classification}]` : ""}`).join("\n"));
    }
    row(dl, "received", r.entry?.receivedTime);
    row(dl, "submitter", r.entry?.submitter);
    box.append(note, dl);
    if (r.sensitive?.length) box.append(sensitiveList("sensitive values (entry)", "entry", r.sensitive, st));
  } catch (e) {
    box.textContent = `Event not loaded: ${(e as Error).message}`;
  }
}

function showEdge(e: LineageEdge | undefined): void {
  if (!e) return;
  const d = $("detail");
  d.replaceChildren();
  d.dataset.node = "";
  const h = document.createElement("h2");
  h.textContent = `edge: ${edgeLabels[e.kind] ?? e.kind}`;
  const st = model.edgeStatus(e);
  const dl = document.createElement("dl");
  row(dl, "from", model.nodes.get(e.from) ? nodeLabel(model.nodes.get(e.from)!).replace("\n", " ") : e.from);
  row(dl, "to", model.nodes.get(e.to) ? nodeLabel(model.nodes.get(e.to)!).replace("\n", " ") : e.to);
  if (e.fromField || e.toField) row(dl, "fields", `${e.fromField} → ${e.toField}`);
  row(dl, "leaf index", e.leafIndex);
  d.append(h, badge(st), dl);
}

// ---- keyboard ----

function onGraphKey(ev: KeyboardEvent): void {
  if (!graph) return;
  const cy = graph.cy;
  const dirs: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  if (ev.key in dirs) {
    ev.preventDefault();
    const [dx, dy] = dirs[ev.key];
    const cur = selected ? cy.getElementById(selected) : cy.collection();
    if (cur.empty()) {
      const first = cy.nodes().sort((a, b) => a.position("x") - b.position("x"))[0];
      if (first && model.nodes.has(first.id())) select(first.id(), true);
      return;
    }
    const p = cur.position();
    let best: string | null = null;
    let bestScore = Infinity;
    cy.nodes().forEach((n) => {
      if (n.id() === cur.id() || !model.nodes.has(n.id())) return;
      const q = n.position();
      const along = (q.x - p.x) * dx + (q.y - p.y) * dy;
      if (along <= 1) return;
      const across = Math.abs((q.x - p.x) * dy) + Math.abs((q.y - p.y) * dx);
      const score = along + 2 * across;
      if (score < bestScore) {
        bestScore = score;
        best = n.id();
      }
    });
    if (best) select(best, true);
    return;
  }
  switch (ev.key) {
    case "Enter":
      $("detail").focus();
      break;
    case "u":
      expand("DIRECTION_UPSTREAM");
      break;
    case "d":
      expand("DIRECTION_DOWNSTREAM");
      break;
    case "f":
      cy.fit(undefined, 30);
      break;
    case "+":
    case "=":
      cy.zoom({ level: cy.zoom() * 1.2, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
      break;
    case "-":
      cy.zoom({ level: cy.zoom() / 1.2, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
      break;
    default:
      return;
  }
  ev.preventDefault();
}

// ---- wiring ----

$("signin-form").addEventListener("submit", (e) => void signIn(e));
$("signout").addEventListener("click", signOut);
$("search-form").addEventListener("submit", search);
$("expand-up").addEventListener("click", () => expand("DIRECTION_UPSTREAM"));
$("expand-down").addEventListener("click", () => expand("DIRECTION_DOWNSTREAM"));
$("fit").addEventListener("click", () => graph?.cy.fit(undefined, 30));
$("collapse-runs").addEventListener("change", () => render());
$("field-edges").addEventListener("change", () => render());
$("cy").addEventListener("keydown", onGraphKey);
$<HTMLSelectElement>("search-kind").addEventListener("change", () => {
  $("record-field").hidden = $<HTMLSelectElement>("search-kind").value !== "record";
});
void init();
