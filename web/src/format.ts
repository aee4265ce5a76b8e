// Parsing what people type, and durations as the API writes them (no DOM: unit-tested in node).

/**
 * Parses a date-time typed by a person: RFC 3339 with a zone, or "YYYY-MM-DD[ T]HH:MM[:SS]"
 * read as UTC, or a bare date (midnight UTC). Returns the ISO string, or null when unreadable.
 */
export function parseDateTime(input: string): string | null {
  const s = input.trim();
  if (s === '') return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?\s*(Z|z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone = 'Z'] = m;
  const z = zone.toUpperCase() === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = frac ? frac.slice(0, 4).padEnd(4, '0') : '';
  const date = new Date(`${y}-${mo}-${d}T${h}:${mi}:${sec}${ms}${z}`);
  if (Number.isNaN(date.getTime())) return null;
  return date.toISOString();
}

/** Splits a list typed by a person: commas, spaces or new lines. */
export function splitList(input: string): string[] {
  return input
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Go-style duration ("1h30m", "90m", "2h") to seconds; null when unreadable. */
export function durationSeconds(d: unknown): number | null {
  if (typeof d !== 'string' || d === '') return null;
  const re = /(\d+(?:\.\d+)?)(h|m|s|ms)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(d)) !== null) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
    consumed = re.lastIndex;
  }
  return consumed === d.length ? total : null;
}
