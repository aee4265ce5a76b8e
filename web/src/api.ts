// The console's only door to the server: same-origin fetch with the console session as a
// Bearer token (no cookies are sent or kept), errors in the management API's shape.
import { TimeoutError, withTimeout } from './timeout';

/**
 * The header on every request the console sends by itself (polls, proofs, retries), so that
 * the server does not count it as the admin's activity for the session's idle timeout.
 */
export const BACKGROUND_HEADER = 'X-Custos-Background';
/** Deadline of a background request without one of its own: nobody waits for it to fail. */
export const BACKGROUND_TIMEOUT_MS = 15_000;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly summary: string,
    readonly code?: string,
    readonly causes: string[] = [],
    readonly reason?: string,
    readonly retryAfter?: number,
  ) {
    super(summary);
    this.name = 'ApiError';
  }

  /** The summary and the causes, for people. */
  get detail(): string {
    return this.causes.length ? `${this.summary} (${this.causes.join('; ')})` : this.summary;
  }
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.detail;
  if (e instanceof Error) return e.message;
  return String(e);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  /** Send the console session (default). Sign-in calls send none. */
  auth?: boolean;
  accept?: string;
  /**
   * Sent by the console itself, not at the admin's request (a poll, a proof, a retry): carries
   * `X-Custos-Background: 1`, and ends after BACKGROUND_TIMEOUT_MS unless `timeoutMs` says.
   */
  background?: boolean;
  /** Ends the request (and the reading of its body, for call/text) after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The headers of a request with these options (without the session). */
export function requestHeaders(options: RequestOptions): Record<string, string> {
  const headers: Record<string, string> = { Accept: options.accept ?? 'application/json' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (options.background) headers[BACKGROUND_HEADER] = '1';
  return headers;
}

export interface ApiResponse<T> {
  data: T;
  status: number;
  headers: Headers;
  /** The `rel="next"` link as a same-origin path, when there is one. */
  next: string | null;
}

/** Parses `Link` headers (fetch joins several with ", ") into rel -> same-origin path. */
export function parseLinks(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  const re = /<([^>]*)>\s*;\s*rel="?([^";,]+)"?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(header)) !== null) {
    try {
      // The server writes absolute URLs with its public base URL; the console asks its own origin.
      const url = new URL(m[1], 'http://placeholder.invalid');
      out[m[2]] = url.pathname + url.search;
    } catch {
      // an unreadable link is no link
    }
  }
  return out;
}

async function errorFrom(res: Response): Promise<ApiError> {
  const retry = Number(res.headers.get('Retry-After') ?? '');
  const retryAfter = Number.isFinite(retry) && retry > 0 ? retry : undefined;
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (body && typeof body === 'object') {
    const b = body as {
      errorCode?: unknown;
      errorSummary?: unknown;
      errorCauses?: unknown;
      reason?: unknown;
      error_description?: unknown;
      error?: unknown;
    };
    const summary =
      typeof b.errorSummary === 'string'
        ? b.errorSummary
        : typeof b.error_description === 'string'
          ? b.error_description
          : typeof b.error === 'string'
            ? b.error
            : `${res.status} ${res.statusText}`;
    const causes = Array.isArray(b.errorCauses)
      ? b.errorCauses
          .map((c) => (c && typeof c === 'object' ? (c as { errorSummary?: unknown }).errorSummary : null))
          .filter((c): c is string => typeof c === 'string')
      : [];
    return new ApiError(
      res.status,
      summary,
      typeof b.errorCode === 'string' ? b.errorCode : undefined,
      causes,
      typeof b.reason === 'string' ? b.reason : undefined,
      retryAfter,
    );
  }
  return new ApiError(res.status, `${res.status} ${res.statusText || 'error'}`, undefined, [], undefined, retryAfter);
}

export class Api {
  constructor(
    private readonly token: () => string | null,
    /** Called when the server refuses the console session (401): the app signs out. */
    private readonly onUnauthorized: (error: ApiError) => void,
  ) {}

  /** The response (its body unread); `timeoutMs` covers only the wait for the headers. */
  raw(path: string, options: RequestOptions = {}): Promise<Response> {
    return this.send(path, options, (res) => Promise.resolve(res));
  }

  /** Sends a request and reads its answer with `read`, all within `options.timeoutMs`. */
  private send<T>(path: string, options: RequestOptions, read: (res: Response) => Promise<T>): Promise<T> {
    const ms = options.timeoutMs ?? (options.background ? BACKGROUND_TIMEOUT_MS : undefined);
    if (!ms) return this.sendNow(path, options, read);
    return withTimeout(ms, (signal) => this.sendNow(path, { ...options, signal }, read), options.signal).catch((e) => {
      throw e instanceof TimeoutError ? new ApiError(0, `the server did not answer (${e.message})`) : e;
    });
  }

  private async sendNow<T>(path: string, options: RequestOptions, read: (res: Response) => Promise<T>): Promise<T> {
    const headers = requestHeaders(options);
    const auth = options.auth ?? true;
    if (auth) {
      const token = this.token();
      if (token) headers.Authorization = `Bearer ${token}`;
    }
    const body = options.body !== undefined ? JSON.stringify(options.body) : undefined;
    let res: Response;
    try {
      res = await fetch(path, {
        method: options.method ?? 'GET',
        headers,
        body,
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
        signal: options.signal,
      });
    } catch (e) {
      if (options.signal?.aborted && options.signal.reason instanceof TimeoutError) throw options.signal.reason;
      throw new ApiError(0, `cannot reach the server (${e instanceof Error ? e.message : String(e)})`);
    }
    if (!res.ok) {
      const error = await errorFrom(res);
      if (res.status === 401 && auth) this.onUnauthorized(error);
      throw error;
    }
    return read(res);
  }

  call<T>(path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    return this.send(path, options, async (res) => {
      let data: unknown = null;
      if (res.status !== 204) {
        const text = await res.text();
        if (text.length > 0) {
          try {
            data = JSON.parse(text);
          } catch {
            throw new ApiError(res.status, 'the server answered something that is not JSON');
          }
        }
      }
      return {
        data: data as T,
        status: res.status,
        headers: res.headers,
        next: parseLinks(res.headers.get('Link')).next ?? null,
      };
    });
  }

  async get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return (await this.call<T>(path, options)).data;
  }

  async post<T>(path: string, body?: unknown): Promise<T> {
    return (await this.call<T>(path, { method: 'POST', body })).data;
  }

  async put<T>(path: string, body?: unknown): Promise<T> {
    return (await this.call<T>(path, { method: 'PUT', body })).data;
  }

  async del(path: string): Promise<void> {
    await this.call<unknown>(path, { method: 'DELETE' });
  }

  /** A text resource (a checkpoint): decoded as strict UTF-8. */
  text(path: string, options: RequestOptions = {}): Promise<string> {
    return this.send(path, { ...options, accept: 'text/plain' }, async (res) =>
      new TextDecoder('utf-8', { fatal: true }).decode(await res.arrayBuffer()),
    );
  }

  /** A file to save: its bytes and the name the server gives it. */
  async download(path: string, fallbackName: string): Promise<{ blob: Blob; filename: string }> {
    const res = await this.raw(path, { accept: '*/*' });
    const disposition = res.headers.get('Content-Disposition') ?? '';
    const m = /filename="([^"]+)"/.exec(disposition);
    const filename = (m ? m[1] : fallbackName).replace(/[/\\]/g, '_');
    return { blob: await res.blob(), filename };
  }
}

/** `/t/<tenant>` with the name escaped. */
export function tenantPrefix(tenant: string): string {
  return `/t/${encodeURIComponent(tenant)}`;
}

export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
