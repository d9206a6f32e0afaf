/**
 * The page's side of the dashboard API: the admin token (taken from the URL fragment
 * `#token=...` into sessionStorage, the fragment then cleared; never put in a URL sent to the
 * server) and the JSON requests, each with `Authorization: Bearer <token>` and a time limit.
 */
import type { Snapshot } from '../collector.js';
import type { TraceView } from '../traces.js';

const TOKEN_ITEM = 'lfaas-dashboard-token';
const REQUEST_TIMEOUT_MS = 5000;

/** What GET /api/state answers: the snapshot, and the recent traces without their spans. */
export type State = Snapshot & { readonly traces: readonly Omit<TraceView, 'spans'>[]; readonly tracesHeld: number };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Moves a `#token=` fragment into sessionStorage and removes it from the address bar. */
export function adoptTokenFromFragment(): void {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match === null) return;
  sessionStorage.setItem(TOKEN_ITEM, decodeURIComponent(match[1]!));
  history.replaceState(null, '', location.pathname + location.search);
}

export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_ITEM, token.trim());
}

export function hasToken(): boolean {
  return (sessionStorage.getItem(TOKEN_ITEM) ?? '') !== '';
}

async function getJson<T>(path: string): Promise<T> {
  const token = sessionStorage.getItem(TOKEN_ITEM) ?? '';
  const response = await fetch(path, { headers: token === '' ? {} : { authorization: `Bearer ${token}` }, cache: 'no-store', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  if (!response.ok) throw new ApiError(response.status, body.error?.code ?? 'HTTP', body.error?.message ?? `HTTP ${response.status}`);
  return body as T;
}

export const fetchState = (): Promise<State> => getJson<State>('/api/state');
export const fetchTrace = (traceId: string): Promise<TraceView> => getJson<TraceView>(`/api/traces/${encodeURIComponent(traceId)}`);
