import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Api, ApiError } from './api';
import { FakeFetch, json } from './test-support/fake-console';
import { apiLogSource } from './verify/source';

let server: FakeFetch;
let api: Api;

beforeEach(() => {
  server = new FakeFetch();
  vi.stubGlobal('fetch', server.fetch);
  api = new Api(
    () => 'session-token',
    () => {},
  );
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe('background requests', () => {
  it('carry X-Custos-Background only when the console sends them by itself', async () => {
    server.routes.push(() => json([]));
    await api.get('/t/acme/api/v1/users');
    await api.get('/t/acme/api/v1/logs', { background: true });
    await api.call('/t/acme/api/v1/logs', { background: true, timeoutMs: 15_000 });
    expect(server.requests()).toEqual([
      { path: '/t/acme/api/v1/users', background: false },
      { path: '/t/acme/api/v1/logs', background: true },
      { path: '/t/acme/api/v1/logs', background: true },
    ]);
    expect(server.seen[0].headers.authorization).toBe('Bearer session-token');
  });

  it("are every request of the browser's log check", async () => {
    server.routes.push((path) =>
      path.endsWith('/checkpoint')
        ? new Response('note\n', { status: 200 })
        : path.includes('/tile/')
          ? new Response(new Uint8Array(32 * 16))
          : json(path.includes('/keys') ? [{ vkey: 'k' }] : { hashes: [] }),
    );
    const source = apiLogSource(api, '/t/acme');
    await source.checkpoint();
    await source.keys();
    await source.inclusion(1, 16);
    await source.consistency(1, 16);
    await source.leafHashAt!(1, 16);
    const seen = server.requests();
    expect(seen).toHaveLength(5);
    expect(seen.every((r) => r.background)).toBe(true);
  });
});

describe('timeouts', () => {
  it('end a request whose answer never comes, and abort it', async () => {
    server.routes.push(
      (_path, req) =>
        new Promise<Response>((_, reject) => req.signal?.addEventListener('abort', () => reject(new Error('aborted')))),
    );
    const error = await api.call('/t/acme/log/checkpoint', { timeoutMs: 20 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).summary).toBe('the server did not answer (no answer within 20 ms)');
    expect(server.seen[0].signal?.aborted).toBe(true);
  });

  it('end every background request after 15 s by default', async () => {
    vi.useFakeTimers();
    server.routes.push(() => new Promise<Response>(() => {}));
    const settled = api.get('/t/acme/api/v1/alerts', { background: true }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(((await settled) as ApiError).summary).toBe('the server did not answer (no answer within 15 s)');
    vi.useRealTimers();
  });

  it('cover the body of a text answer too', async () => {
    server.routes.push(
      () =>
        new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode('partial'));
            },
          }),
        ),
    );
    await expect(api.text('/t/acme/log/checkpoint', { timeoutMs: 20 })).rejects.toThrow(/did not answer/);
  });
});
