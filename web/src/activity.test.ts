import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Activity, DEFAULT_IDLE_MS, MAX_IDLE_MS, MIN_IDLE_MS, idleWindowMs } from './activity';

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(Date.parse('2026-01-01T00:00:00Z'));
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the idle window', () => {
  it("is the session's idle timeout, as its expiry just after use gives it", () => {
    const now = Date.now();
    expect(idleWindowMs(new Date(now + 30 * 60_000).toISOString(), now)).toBe(30 * 60_000);
  });

  it('is bounded, whatever the clocks say', () => {
    const now = Date.now();
    expect(idleWindowMs(new Date(now + 24 * 3600_000).toISOString(), now)).toBe(MAX_IDLE_MS);
    expect(idleWindowMs(new Date(now - 3600_000).toISOString(), now)).toBe(MIN_IDLE_MS);
    expect(idleWindowMs(undefined, now)).toBe(DEFAULT_IDLE_MS);
    expect(idleWindowMs('not a time', now)).toBe(DEFAULT_IDLE_MS);
  });
});

describe('Activity', () => {
  it('turns idle after the window without input, says so, and resumes on input', () => {
    const changes: boolean[] = [];
    const a: Activity = new Activity(10 * 60_000, () => changes.push(a.idle));
    vi.advanceTimersByTime(9 * 60_000);
    a.input();
    vi.advanceTimersByTime(9 * 60_000);
    expect(a.idle).toBe(false);
    expect(changes).toEqual([]);
    vi.advanceTimersByTime(60_000);
    expect(a.idle).toBe(true);
    expect(changes).toEqual([true]);
    a.input();
    expect(a.idle).toBe(false);
    expect(changes).toEqual([true, false]);
    a.dispose();
  });

  it('starts a new window for a new session', () => {
    const a = new Activity(60_000);
    vi.advanceTimersByTime(60_000);
    expect(a.idle).toBe(true);
    a.restart(5 * 60_000);
    vi.advanceTimersByTime(4 * 60_000);
    expect(a.idle).toBe(false);
    expect(a.idleMinutes).toBe(5);
    a.dispose();
  });
});
