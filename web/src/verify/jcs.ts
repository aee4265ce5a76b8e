// RFC 8785 JSON Canonicalization Scheme: the form in which Custos stores an event as a log
// entry (docs/system-log.md, "Entries"). The input is a value as JSON.parse returns it.
//
// - objects: members sorted by their names' UTF-16 code units, no whitespace;
// - strings: only '"', '\\' and control characters escaped (\b \f \n \r \t, others \u00xx in
//   lower case); everything else as is (UTF-8 once encoded); lone surrogates are refused;
// - numbers: the ECMAScript Number-to-String algorithm (what JCS specifies); NaN and the
//   infinities are refused.

export class CanonicalizationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CanonicalizationError';
  }
}

const SHORT_ESCAPES: Record<number, string> = {
  0x08: '\\b',
  0x09: '\\t',
  0x0a: '\\n',
  0x0c: '\\f',
  0x0d: '\\r',
  0x22: '\\"',
  0x5c: '\\\\',
};

function serializeString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) {
      out += short;
    } else if (c < 0x20) {
      out += '\\u' + c.toString(16).padStart(4, '0');
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (next < 0xdc00 || next > 0xdfff) throw new CanonicalizationError('string holds a lone surrogate');
      out += s[i] + s[i + 1];
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      throw new CanonicalizationError('string holds a lone surrogate');
    } else {
      out += s[i];
    }
  }
  return out + '"';
}

function serializeNumber(n: number): string {
  if (!Number.isFinite(n)) throw new CanonicalizationError(`${n} is not a JSON number`);
  // ECMAScript Number::toString, as RFC 8785 section 3.2.2.3 requires; -0 becomes "0".
  return Object.is(n, -0) ? '0' : String(n);
}

function compareUtf16(a: string, b: string): number {
  // Plain string comparison in ECMAScript compares UTF-16 code units, as JCS sorts.
  return a < b ? -1 : a > b ? 1 : 0;
}

function serialize(value: unknown, depth: number): string {
  if (depth > 1000) throw new CanonicalizationError('value is nested too deeply');
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return serializeNumber(value);
    case 'string':
      return serializeString(value);
    case 'object': {
      if (Array.isArray(value)) {
        return '[' + value.map((v) => serialize(v, depth + 1)).join(',') + ']';
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort(compareUtf16);
      const members = keys.map((k) => serializeString(k) + ':' + serialize(record[k], depth + 1));
      return '{' + members.join(',') + '}';
    }
    default:
      throw new CanonicalizationError(`a ${typeof value} is not JSON`);
  }
}

/** The canonical JSON text of `value` (a string; encode it as UTF-8 to hash it). */
export function canonicalize(value: unknown): string {
  return serialize(value, 0);
}
