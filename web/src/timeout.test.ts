import { afterEach, describe, expect, it, vi } from 'vitest';
import { TimeoutError, withTimeout } from './timeout';

afterEach(() => {
  vi.useRealTimers();
});

describe('withTimeout', () => {
  it('rejects at the deadline and aborts the task, even a task that ignores its signal', async () => {
    vi.useFakeTimers();
    let signal: AbortSignal | undefined;
    const result = withTimeout(15_000, (s) => {
      signal = s;
      return new Promise<string>(() => {});
    });
    const settled = result.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await vi.advanceTimersByTimeAsync(14_999);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await settled;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toBe('no answer within 15 s');
    expect(signal?.aborted).toBe(true);
  });

  it('passes on an answer in time and leaves no timer behind', async () => {
    vi.useFakeTimers();
    expect(await withTimeout(15_000, () => Promise.resolve(42))).toBe(42);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborts the task when the outer signal aborts', async () => {
    const outer = new AbortController();
    let inner: AbortSignal | undefined;
    const p = withTimeout(
      15_000,
      (s) =>
        new Promise<never>((_, reject) => {
          inner = s;
          s.addEventListener('abort', () => reject(new Error('aborted')));
        }),
      outer.signal,
    );
    outer.abort();
    await expect(p).rejects.toThrow('aborted');
    expect(inner?.aborted).toBe(true);
  });
});
