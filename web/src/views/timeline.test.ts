import { describe, expect, it } from 'vitest';
import { MAX_LANES, type TimelineEntry, ariaLabel, kindOf, layoutTimeline } from './timeline';

const t0 = Date.parse('2022-01-21T15:05:00Z');
const t1 = Date.parse('2022-01-21T15:30:00Z');
const at = (min: number) => new Date(t0 + min * 60_000).toISOString();

const entries: TimelineEntry[] = [
  { time: at(1), eventType: 'support.view', outcome: 'SUCCESS', deviceId: 'dev1', sessionId: 's1' },
  { time: at(2), eventType: 'support.action.password_reset', outcome: 'SUCCESS', deviceId: 'dev1', sessionId: 's1' },
  { time: at(3), eventType: 'support.action.mfa_reset', outcome: 'DENY', deviceId: 'dev1', sessionId: 's2' },
  { time: at(4), eventType: 'support.access.request', outcome: 'SUCCESS', deviceId: 'dev1', sessionId: 's2' },
  { time: '2022-01-20T00:00:00Z', eventType: 'support.view', outcome: 'SUCCESS', deviceId: 'dev9', sessionId: 's9' },
];

describe('incident timeline', () => {
  it('classifies marks as the server report does', () => {
    expect(entries.map(kindOf)).toEqual(['view', 'attempt', 'refusal', 'other', 'view']);
  });

  it('puts sessions in lanes, time left to right, and leaves out what is outside the range', () => {
    const l = layoutTimeline(entries, { start: t0, end: t1 }, 'acme');
    expect(l.lanes.map((x) => x.label)).toEqual(['dev1 · s1', 'dev1 · s2']);
    expect(l.outside).toBe(1);
    expect(l.marks).toHaveLength(4);
    const xs = l.marks.map((m) => m.x);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
    expect(l.marks[0].y).toBeLessThan(l.marks[2].y);
    expect(l.marks[0].x).toBeGreaterThanOrEqual(l.plotLeft);
    expect(l.marks[3].x).toBeLessThanOrEqual(l.plotRight);
    expect(l.counts).toEqual({ view: 1, attempt: 1, refusal: 1, other: 1 });
    expect(l.marks[2].title).toContain('support.action.mfa_reset DENY');
  });

  it('describes itself for screen readers', () => {
    const l = layoutTimeline(entries, { start: t0, end: t1 }, 'acme');
    expect(ariaLabel('acme', l)).toBe(
      'Timeline of acme from 2022-01-21T15:05:00Z to 2022-01-21T15:30:00Z: 2 operator session lanes, 1 view, ' +
        '1 attempted guarded action, 1 refusal, 1 other event.',
    );
  });

  it('draws at most MAX_LANES lanes and says how many more there were', () => {
    const many = Array.from({ length: MAX_LANES + 3 }, (_, i) => ({ time: at(1), eventType: 'support.view', sessionId: `s${i}` }));
    const l = layoutTimeline(many, { start: t0, end: t1 }, 'acme');
    expect(l.lanes).toHaveLength(MAX_LANES);
    expect(l.hiddenLanes).toBe(3);
    expect(l.marks).toHaveLength(MAX_LANES);
  });
});
