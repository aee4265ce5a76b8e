// Views that refresh by themselves: their polls carry X-Custos-Background and stop while the
// admin has left the console idle, so that an unattended console does not keep its session alive.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Activity } from '../activity';
import { FakeFetch, fakeCtx, json } from '../test-support/fake-console';
import { AlertsView } from './alerts';
import { SupportView } from './support';

let server: FakeFetch;
let activity: Activity;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  server = new FakeFetch();
  server.routes.push((path) => json(path.endsWith('/policy') ? { policy: 'approval_required' } : []));
  vi.stubGlobal('fetch', server.fetch);
  activity = new Activity(10 * 60_000);
});
afterEach(() => {
  activity.dispose();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe.each([
  ['support access', 'acme', (ctx: ReturnType<typeof fakeCtx>) => new SupportView(ctx), 15_000, 5],
  ['alerts', 'provider', (ctx: ReturnType<typeof fakeCtx>) => new AlertsView(ctx), 20_000, 1],
])('%s', (_name, tenant, make, interval, perRound) => {
  it('loads at the admin’s request, then polls in the background until the admin is idle', async () => {
    const view = make(fakeCtx(tenant, 'token', activity));
    await vi.advanceTimersByTimeAsync(0);
    expect(server.requests()).toHaveLength(perRound);
    expect(server.requests().every((r) => !r.background)).toBe(true);

    await vi.advanceTimersByTimeAsync(interval);
    const polls = server.requests().slice(perRound);
    expect(polls).toHaveLength(perRound);
    expect(polls.every((r) => r.background)).toBe(true);

    await vi.advanceTimersByTimeAsync(10 * 60_000);
    const whenIdle = server.requests().length;
    await vi.advanceTimersByTimeAsync(30 * 60_000);
    expect(server.requests()).toHaveLength(whenIdle);

    activity.input();
    await vi.advanceTimersByTimeAsync(interval);
    expect(server.requests().length).toBe(whenIdle + perRound);
    expect(server.requests().slice(perRound).every((r) => r.background)).toBe(true);
    view.dispose?.();
  });
});
