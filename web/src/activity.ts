// Whether the admin is still at the console. Polls (support requests, alerts, the live tail)
// stop once the session's idle timeout has passed without a key press or a pointer press, so
// that an unattended console cannot keep its session alive by itself; the next input resumes
// them. (The polls also carry X-Custos-Background, so a server that honours it does not count
// them as activity at all.)

/** Used when the session answer says nothing about when the session ends. */
export const DEFAULT_IDLE_MS = 15 * 60_000;
export const MIN_IDLE_MS = 60_000;
/** The server's default `authn.session_idle_timeout`; a longer window is not trusted. */
export const MAX_IDLE_MS = 2 * 3600_000;

/**
 * The idle window of a session whose answer (`expiresAt`, RFC 3339) arrived at `receivedAt`
 * (ms). The server has just used the session, so `expiresAt` is its last use plus the idle
 * timeout (or the end of its lifetime, when sooner). Bounded so that a wrong clock here
 * cannot make the console poll for long.
 */
export function idleWindowMs(expiresAt: string | undefined, receivedAt: number): number {
  const end = expiresAt ? Date.parse(expiresAt) : Number.NaN;
  if (!Number.isFinite(end)) return DEFAULT_IDLE_MS;
  return Math.min(MAX_IDLE_MS, Math.max(MIN_IDLE_MS, end - receivedAt));
}

/** Tracks the admin's last input. Single-threaded (the page's event loop). */
export class Activity {
  private last: number;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private wasIdle = false;

  constructor(
    private idleMs: number,
    /** Called when the console becomes idle or active again (to show it). */
    private readonly onChange: () => void = () => {},
    private readonly now: () => number = () => Date.now(),
  ) {
    this.last = this.now();
    this.arm();
  }

  /** A key or pointer press: the admin is here. */
  input(): void {
    this.last = this.now();
    if (this.wasIdle) {
      this.wasIdle = false;
      this.onChange();
    }
    this.arm();
  }

  /** A new session (sign-in, reload): its idle window, counted from now. */
  restart(idleMs: number): void {
    this.idleMs = idleMs;
    this.input();
  }

  /** True once the idle window has passed without input: send no automatic requests. */
  get idle(): boolean {
    return this.now() - this.last >= this.idleMs;
  }

  get idleMinutes(): number {
    return Math.round(this.idleMs / 60_000);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.idle) {
        this.wasIdle = true;
        this.onChange();
      } else {
        this.arm();
      }
    }, Math.max(0, this.last + this.idleMs - this.now()));
  }
}
