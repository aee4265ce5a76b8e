import { describe, expect, it } from 'vitest';
import { parseLinks } from './api';
import { durationSeconds, parseDateTime, splitList } from './format';

describe('date-times typed by people', () => {
  it.each([
    ['2022-01-21T15:05:00Z', '2022-01-21T15:05:00.000Z'],
    ['2022-01-21 15:05', '2022-01-21T15:05:00.000Z'],
    ['2022-01-21 15:05:23', '2022-01-21T15:05:23.000Z'],
    ['2022-01-21T15:05:23.5Z', '2022-01-21T15:05:23.500Z'],
    ['2022-01-21T17:05:00+02:00', '2022-01-21T15:05:00.000Z'],
    ['2022-01-21T10:05:00-0500', '2022-01-21T15:05:00.000Z'],
    ['2022-01-21', '2022-01-21T00:00:00.000Z'],
  ])('reads %s as UTC', (input, expected) => {
    expect(parseDateTime(input)).toBe(expected);
  });

  it.each(['', 'yesterday', '21/01/2022', '2022-13-01', '2022-01-21T25:00'])('refuses %s', (input) => {
    expect(parseDateTime(input)).toBeNull();
  });
});

describe('lists and durations', () => {
  it('splits on commas, spaces and new lines', () => {
    expect(splitList(' a, b\nc  d,,')).toEqual(['a', 'b', 'c', 'd']);
  });

  it('reads Go-style durations', () => {
    expect(durationSeconds('4h')).toBe(14400);
    expect(durationSeconds('1h30m')).toBe(5400);
    expect(durationSeconds('90m')).toBe(5400);
    expect(durationSeconds('4 hours')).toBeNull();
    expect(durationSeconds(undefined)).toBeNull();
  });
});

describe('Link headers', () => {
  it('takes rel="next" as a same-origin path', () => {
    const header =
      '<http://id.example.com:8080/t/acme/api/v1/logs?limit=2>; rel="self", ' +
      '<http://id.example.com:8080/t/acme/api/v1/logs?limit=2&after=5>; rel="next"';
    expect(parseLinks(header)).toEqual({
      self: '/t/acme/api/v1/logs?limit=2',
      next: '/t/acme/api/v1/logs?limit=2&after=5',
    });
    expect(parseLinks(null)).toEqual({});
  });
});
