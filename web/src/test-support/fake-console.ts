// Test support (imported by *.test.ts only): a fake server behind `fetch`, and the context a
// view gets from the app, so that views run in node against the real Api.
import { Activity } from '../activity';
import { Api } from '../api';
import type { Ctx, DialogSpec } from '../ui';

export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  signal: AbortSignal | null;
}

export type Route = (path: string, req: SeenRequest) => Response | Promise<Response> | null;

/** A `fetch` that answers with the first route that answers; 404 otherwise. */
export class FakeFetch {
  readonly seen: SeenRequest[] = [];
  routes: Route[] = [];

  readonly fetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const path = String(input);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const req: SeenRequest = { method: init.method ?? 'GET', path, headers, signal: init.signal ?? null };
    this.seen.push(req);
    for (const route of this.routes) {
      const res = await route(path, req);
      if (res) return res;
    }
    return json({ errorCode: 'E0000007', errorSummary: `Not found: ${path}` }, 404);
  };

  /** Paths seen, with whether each carried X-Custos-Background. */
  requests(filter: (path: string) => boolean = () => true): Array<{ path: string; background: boolean }> {
    return this.seen
      .filter((r) => filter(r.path))
      .map((r) => ({ path: r.path, background: r.headers['x-custos-background'] === '1' }));
  }
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

export interface FakeCtx extends Ctx {
  updates: number;
  flashes: string[];
  dialog: DialogSpec | null;
}

export function fakeCtx(tenant: string, token: string, activity = new Activity(15 * 60_000)): FakeCtx {
  const api = new Api(
    () => token,
    () => {},
  );
  const ctx: FakeCtx = {
    api,
    session: { token, tenant, info: { user: { id: '00u1', login: 'admin' }, tenant: { name: tenant }, provider: tenant === 'provider' } },
    prefix: `/t/${tenant}`,
    updates: 0,
    flashes: [],
    dialog: null,
    update: () => void ctx.updates++,
    navigate: () => {},
    openDialog: (spec) => void (ctx.dialog = spec),
    closeDialog: () => void (ctx.dialog = null),
    flash: (text) => void ctx.flashes.push(text),
    activity,
  };
  return ctx;
}
