// Deadlines for requests that run without anyone watching them (proofs, checkpoints, polls): a
// server that never answers must end in a visible failure, not in a state that waits forever.

/** What a task rejects with when its deadline passed. */
export class TimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`}`);
    this.name = 'TimeoutError';
  }
}

/**
 * Runs `task` with an AbortSignal that aborts after `ms`. The result rejects with TimeoutError
 * at the deadline even when the task ignores its signal; `outer` aborting aborts the task too.
 */
export async function withTimeout<T>(
  ms: number,
  task: (signal: AbortSignal) => Promise<T>,
  outer?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  const abortFromOuter = () => controller.abort(outer?.reason);
  if (outer?.aborted) controller.abort(outer.reason);
  outer?.addEventListener('abort', abortFromOuter, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new TimeoutError(ms);
      controller.abort(error);
      reject(error);
    }, ms);
  });
  try {
    return await Promise.race([task(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', abortFromOuter);
  }
}
