// api.ts talks to provlogd's REST API (/v1/..., the grpc-gateway mapping of
// the gRPC API) with the bearer token from session storage.
import type { LeafProofsJSON } from "./verify";

export interface AssetRef {
  uri: string;
  version?: string;
  recordKey?: string;
}

export interface LineageNode {
  id: string;
  kind: string; // NODE_KIND_ASSET | NODE_KIND_ACTIVITY | NODE_KIND_RUN
  leafIndex: string;
  asset?: AssetRef | null;
  classification?: string;
  eventId?: string;
  operation?: string;
  actorId?: string;
  eventTime?: string | null;
  workflowId?: string;
  stepId?: string;
  runId?: string;
  masked?: boolean;
  // Activities: the event's sensitive values as this token may see them.
  sensitive?: SensitiveReveal[];
}

// SensitiveReveal is one sensitive value as the server shows it to the
// caller's role (provlog.v1.SensitiveReveal): the page shows exactly this.
export interface SensitiveReveal {
  name?: string;
  classification?: string;
  keyId?: string;
  commitment?: string; // base64
  // SENSITIVE_STATUS_REVEALED | _REDACTED | _SHREDDED | _ARCHIVED | _UNAVAILABLE
  status?: string;
  value?: string;
  salt?: string; // base64
  display?: string;
  erasedTime?: string;
  policy?: string;
}

export interface LineageEdge {
  from: string;
  to: string;
  kind: string;
  leafIndex: string;
  fromField?: string;
  toField?: string;
}

export interface Gap {
  kind: string;
  detail: string;
  leafIndexes?: string[];
}

export interface TraceResponse {
  nodes?: LineageNode[];
  edges?: LineageEdge[];
  gaps?: Gap[];
  truncated?: boolean;
  proofs?: LeafProofsJSON;
}

export interface RunEventsResponse {
  events?: { leafIndex: string; eventId: string; operation: string; eventTime?: string; actorId: string; runId: string; stepId: string }[];
  gaps?: Gap[];
  proofs?: LeafProofsJSON;
}

export interface EntryResponse {
  index: string;
  leaf: string; // base64
  entry?: { event?: Record<string, unknown>; receivedTime?: string; submitter?: string };
  sensitive?: SensitiveReveal[];
}

export class APIError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

const tokenKey = "provlog.token";

export function token(): string | null {
  return sessionStorage.getItem(tokenKey);
}

export function setToken(t: string | null): void {
  if (t === null) sessionStorage.removeItem(tokenKey);
  else sessionStorage.setItem(tokenKey, t);
}

// apiBase is where /v1/ lives: the origin serving /ui/.
function apiURL(path: string, params?: URLSearchParams): string {
  const u = new URL(path, window.location.origin);
  if (params) u.search = params.toString();
  return u.toString();
}

export async function get<T>(path: string, params?: URLSearchParams): Promise<T> {
  const t = token();
  const resp = await fetch(apiURL(path, params), {
    headers: t ? { Authorization: `Bearer ${t}` } : {},
    cache: "no-store",
    credentials: "omit",
  });
  const body = await resp.text();
  if (!resp.ok) {
    let msg = body;
    try {
      msg = JSON.parse(body).message ?? body;
    } catch {
      /* not JSON */
    }
    throw new APIError(resp.status, msg || resp.statusText);
  }
  return JSON.parse(body) as T;
}

export interface TraceFilter {
  since?: string; // RFC 3339
  until?: string;
  actorIds?: string[];
  workflowIds?: string[];
  operations?: string[];
  classifications?: string[];
}

export type Start = { asset: AssetRef } | { eventId: string } | { runId: string };

export function traceParams(tenant: string, start: Start, direction: string, depth: number, filter: TraceFilter, maxNodes = 0): URLSearchParams {
  const p = new URLSearchParams();
  p.set("tenant", tenant);
  if ("asset" in start) {
    p.set("asset.uri", start.asset.uri);
    if (start.asset.version) p.set("asset.version", start.asset.version);
    if (start.asset.recordKey) p.set("asset.recordKey", start.asset.recordKey);
  } else if ("eventId" in start) {
    p.set("eventId", start.eventId);
  } else {
    p.set("runId", start.runId);
  }
  p.set("direction", direction);
  p.set("depth", String(depth));
  if (maxNodes) p.set("maxNodes", String(maxNodes));
  if (filter.since) p.set("filter.since", filter.since);
  if (filter.until) p.set("filter.until", filter.until);
  for (const a of filter.actorIds ?? []) p.append("filter.actorIds", a);
  for (const w of filter.workflowIds ?? []) p.append("filter.workflowIds", w);
  for (const o of filter.operations ?? []) p.append("filter.operations", o);
  for (const c of filter.classifications ?? []) p.append("filter.classifications", c);
  return p;
}

export function trace(params: URLSearchParams): Promise<TraceResponse> {
  return get<TraceResponse>("/v1/lineage", params);
}

export function runEvents(tenant: string, runId: string): Promise<RunEventsResponse> {
  return get<RunEventsResponse>(`/v1/lineage/runs/${encodeURIComponent(runId)}`, new URLSearchParams({ tenant }));
}

// WorkflowRun is one run of a workflow (provlog.v1.WorkflowRun).
export interface WorkflowRun {
  runId: string;
  firstLeafIndex?: string;
  lastLeafIndex?: string;
  eventCount?: string;
  status?: string; // RUN_STATUS_RUNNING | _COMPLETED | _FAILED
  started?: boolean;
  startTime?: string;
  platform?: string;
}

export interface WorkflowRunsResponse {
  runs?: WorkflowRun[];
  nextPageToken?: string;
  proofs?: LeafProofsJSON;
}

export function workflowRuns(tenant: string, workflowId: string, pageToken = ""): Promise<WorkflowRunsResponse> {
  const p = new URLSearchParams({ tenant });
  if (pageToken) p.set("pageToken", pageToken);
  return get<WorkflowRunsResponse>(`/v1/lineage/workflows/${encodeURIComponent(workflowId)}/runs`, p);
}

export function entry(index: string): Promise<EntryResponse> {
  return get<EntryResponse>(`/v1/entries/${encodeURIComponent(index)}`);
}

export interface UIConfig {
  origin?: string;
  logKey?: string;
}

export async function config(): Promise<UIConfig> {
  try {
    const r = await fetch(new URL("config.json", window.location.href), { cache: "no-store" });
    if (!r.ok) return {};
    return (await r.json()) as UIConfig;
  } catch {
    return {};
  }
}
