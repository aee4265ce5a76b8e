import { describe, expect, it } from 'vitest';
import { buildLogFilter, uuidFilter } from './log-filter';

describe('System Log filter expressions', () => {
  it('is empty without conditions', () => {
    expect(buildLogFilter({})).toBe('');
  });

  it('joins the fields with and', () => {
    expect(buildLogFilter({ eventType: 'user.session.start', outcome: 'failure' })).toBe(
      'eventType eq "user.session.start" and outcome.result eq "FAILURE"',
    );
  });

  it('takes a trailing star as a prefix', () => {
    expect(buildLogFilter({ eventType: 'support.*' })).toBe('eventType sw "support."');
  });

  it('matches the actor by id, login or name', () => {
    expect(buildLogFilter({ actor: 'ada' })).toBe(
      '(actor.id eq "ada" or actor.alternateId co "ada" or actor.displayName co "ada")',
    );
  });

  it('keeps what a person types inside the string literal', () => {
    const f = buildLogFilter({ actor: 'x" or eventType pr or "' });
    expect(f).toContain('actor.id eq "x\\" or eventType pr or \\""');
    // The first literal, read back as JSON, is exactly what was typed.
    const lit = /^\(actor\.id eq ("(?:[^"\\]|\\.)*")/.exec(f);
    expect(lit && JSON.parse(lit[1])).toBe('x" or eventType pr or "');
  });

  it('finds events by uuid', () => {
    expect(uuidFilter(['a', 'b'])).toBe('uuid eq "a" or uuid eq "b"');
  });
});
