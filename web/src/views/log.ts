// The System Log explorer: filters, live tail, event detail, and a verification mark per event
// that turns "Verified" only after the browser checked the event itself (../verify).
import { type TemplateResult, html, nothing } from 'lit-html';
import { errorText, query } from '../api';
import { type Mark, type CheckpointStatus, type LogVerifier, entryText, markText } from '../verify/log-verifier';
import { basePathOf, expectedLogOrigin } from '../verify/origin';
import { verifierFor } from '../verify/source';
import { keyIdHex } from '../verify/note';
import { type Ctx, type View, asArray, badge, fmtTime, hashParams, parseDateTime, str, tableRegion, text } from '../ui';
import { COMMON_EVENT_TYPES, buildLogFilter, uuidFilter } from './log-filter';

export interface LogEvent {
  uuid: string;
  published?: string;
  eventType?: string;
  displayMessage?: string | null;
  severity?: string;
  actor?: { id?: string; type?: string; alternateId?: string | null; displayName?: string | null } | null;
  client?: { ipAddress?: string | null } | null;
  outcome?: { result?: string; reason?: string | null } | null;
  target?: Array<{ id?: string; type?: string; alternateId?: string | null; displayName?: string | null }> | null;
  custos?: { log?: { origin?: string; index?: number | null } };
  [key: string]: unknown;
}

interface Filters {
  since: string;
  until: string;
  eventType: string;
  actor: string;
  outcome: string;
  q: string;
}

const OUTCOMES = ['SUCCESS', 'FAILURE', 'DENY', 'ALLOW', 'SKIPPED', 'CHALLENGE', 'UNKNOWN'];
const PAGE = 50;
const TAIL_INTERVAL_MS = 2000;
const RETRY_INTERVAL_MS = 1500;
/** More rounds than the verifier's margin (2 minutes) takes: it fails a missing event first. */
const MAX_RETRIES = 100;
/** Deadline of the console's own requests here (tail polls, refetches of waiting events). */
const REQUEST_TIMEOUT_MS = 15_000;

function who(p: { id?: string; alternateId?: string | null; displayName?: string | null } | null | undefined): string {
  if (!p) return '—';
  return p.displayName || p.alternateId || p.id || '—';
}

export function markTemplate(uuid: string, mark: Mark | undefined): TemplateResult {
  const m = mark ?? { state: 'pending' as const };
  const icon = m.state === 'verified' ? '✓' : m.state === 'failed' ? '✗' : m.state === 'unsequenced' ? '…' : '⋯';
  return html`<span class=${`mark mark-${m.state}`} data-testid=${`verify-${uuid}`} data-state=${m.state}
    ><span class="mark-icon" aria-hidden="true">${icon}</span> ${markText(m)}</span
  >`;
}

/**
 * The event as the browser checked it: the canonical text it hashed (the event without
 * `custos`, RFC 8785), and apart from it `custos`, which the server adds and the log does not
 * cover.
 */
export function eventTexts(e: LogEvent): TemplateResult {
  let canonical: string | null = null;
  let problem = '';
  try {
    canonical = entryText(e);
  } catch (err) {
    problem = err instanceof Error ? err.message : String(err);
  }
  const entry = canonical === null
    ? html`<h3>The event as the server sent it</h3>
        <p class="error" role="alert">This event cannot be put in canonical form (${problem}), so the browser could not hash it.</p>
        <pre class="json" tabindex="0" aria-label="Event JSON as sent (not verified)">${JSON.stringify(e, null, 2)}</pre>`
    : html`<h3>The text the browser hashed</h3>
        <p class="hint">
          The event without <code>custos</code>, in canonical form (RFC 8785): its leaf hash is SHA-256 of a 0x00 byte
          and this text in UTF-8. When the mark says “Verified”, this is exactly what the log holds.
        </p>
        <pre class="json canonical" tabindex="0" aria-label="Canonical event text (hashed)">${canonical}</pre>
        <details class="readable">
          <summary>The same, indented for reading</summary>
          <pre class="json" tabindex="0" aria-label="Event JSON, indented">${JSON.stringify(JSON.parse(canonical), null, 2)}</pre>
        </details>`;
  return html`${entry}
    <h3>Not covered by the log: <code>custos</code></h3>
    <p class="hint">
      Added by the server when it answers (where the event sits in the log); it is not part of the hashed text. The
      check only uses its index to ask for the proof, so a wrong index fails the check.
    </p>
    <pre class="json" tabindex="0" aria-label="custos (not covered by the log)">${e.custos === undefined ? '(none)' : JSON.stringify(e.custos, null, 2)}</pre>`;
}

export class LogView implements View {
  readonly title = 'System Log';
  private filters: Filters;
  private events: LogEvent[] = [];
  /**
   * The mark of each event object shown. A refetch gives new objects (an edited event keeps
   * its uuid), so no mark can outlive the content it was computed for.
   */
  private marks = new WeakMap<LogEvent, Mark>();
  /** The latest check of each event object: only its result may set the mark. */
  private readonly checks = new WeakMap<LogEvent, number>();
  private checkSeq = 0;
  private readonly retries = new Map<string, number>();
  private state: 'loading' | 'ok' | 'error' = 'loading';
  private error = '';
  private next: string | null = null;
  private loadingMore = false;
  private tail = false;
  private tailCursor: string | null = null;
  private tailTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;
  private generation = 0;
  private readonly verifier: LogVerifier;
  private checkpoint: CheckpointStatus = { state: 'unknown' };
  private filterError = '';

  constructor(private readonly ctx: Ctx) {
    const p = hashParams();
    this.filters = {
      since: p.get('since') ?? '',
      until: p.get('until') ?? '',
      eventType: p.get('type') ?? '',
      actor: p.get('actor') ?? '',
      outcome: (p.get('outcome') ?? '').toUpperCase(),
      q: p.get('q') ?? '',
    };
    // The log to expect is worked out here, from this page's address and the organisation the
    // admin signed in to; the session's logOrigin (the server's word) plays no part.
    const origin = expectedLogOrigin(location.host, basePathOf(location.pathname), ctx.session.tenant);
    this.verifier = verifierFor(ctx.api, ctx.prefix, ctx.session.token, ctx.session.tenant, origin);
    void this.refreshCheckpoint();
    void this.load();
  }

  busy() {
    return this.state === 'loading' || this.loadingMore;
  }

  /** The mark shown for the event `uuid` now (that of the event object in the list). */
  markFor(uuid: string): Mark | undefined {
    const e = this.events.find((x) => x.uuid === uuid);
    return e ? (this.marks.get(e) ?? { state: 'pending' }) : undefined;
  }

  dispose() {
    this.disposed = true;
    this.stopTail();
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private async refreshCheckpoint(): Promise<void> {
    this.checkpoint = await this.verifier.refresh();
    this.ctx.update();
  }

  private queryParams(extra: Record<string, string | number | undefined>): string {
    const since = parseDateTime(this.filters.since) ?? undefined;
    const until = parseDateTime(this.filters.until) ?? undefined;
    return query({
      since,
      until,
      filter: buildLogFilter(this.filters) || undefined,
      q: this.filters.q.trim() || undefined,
      ...extra,
    });
  }

  private async load(): Promise<void> {
    const gen = ++this.generation;
    this.state = 'loading';
    this.ctx.update();
    try {
      const res = await this.ctx.api.call<LogEvent[]>(
        `${this.ctx.prefix}/api/v1/logs${this.queryParams({ limit: PAGE, sortOrder: 'DESCENDING' })}`,
      );
      if (gen !== this.generation || this.disposed) return;
      this.events = asArray<LogEvent>(res.data).filter((e) => e && typeof e.uuid === 'string');
      this.next = res.next;
      this.retries.clear();
      this.state = 'ok';
      this.verifyAll(this.events);
    } catch (e) {
      if (gen !== this.generation || this.disposed) return;
      this.state = 'error';
      this.error = errorText(e);
    }
    this.ctx.update();
    if (this.tail) this.startTail(false);
  }

  private async more(): Promise<void> {
    if (!this.next) return;
    this.loadingMore = true;
    this.ctx.update();
    try {
      const res = await this.ctx.api.call<LogEvent[]>(this.next);
      const known = new Set(this.events.map((e) => e.uuid));
      const older = asArray<LogEvent>(res.data).filter((e) => e && typeof e.uuid === 'string' && !known.has(e.uuid));
      this.events = [...this.events, ...older];
      this.next = res.next;
      this.verifyAll(older);
    } catch (e) {
      this.ctx.flash(`Could not load older events: ${errorText(e)}`, 'error');
    } finally {
      this.loadingMore = false;
      this.ctx.update();
    }
  }

  private verifyAll(events: LogEvent[]): void {
    for (const e of events) void this.verifyOne(e);
  }

  private async verifyOne(e: LogEvent): Promise<void> {
    const check = ++this.checkSeq;
    this.checks.set(e, check);
    // No earlier result stands while this check runs; a wait already shown may stay.
    const shown = this.marks.get(e)?.state;
    if (shown !== 'pending' && shown !== 'unsequenced') this.marks.set(e, { state: 'pending' });
    let mark: Mark;
    try {
      mark = await this.verifier.verifyEvent(e);
    } catch (err) {
      mark = { state: 'failed', reason: `the check itself failed (${errorText(err)})` };
    }
    if (this.disposed) return;
    // The list may have replaced this event meanwhile (a refetch), or a newer check of it may
    // have started: only the latest check of the shown object counts.
    if (this.checks.get(e) !== check || !this.events.includes(e)) return;
    this.marks.set(e, mark);
    if (mark.state === 'pending' || mark.state === 'unsequenced') this.scheduleRetry();
    this.checkpoint = this.verifier.status;
    this.ctx.update();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.disposed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.retryWaiting();
    }, RETRY_INTERVAL_MS);
  }

  /**
   * Events not yet covered by a checkpoint, or not yet in the log, are checked again, until the
   * verifier fails them (LogVerifier.waiting) or the rounds run out, which fails them too.
   */
  private async retryWaiting(): Promise<void> {
    if (this.disposed) return;
    const isWaiting = (e: LogEvent) => {
      const m = this.marks.get(e);
      return !!m && (m.state === 'pending' || m.state === 'unsequenced');
    };
    let exhausted = false;
    for (const e of this.events) {
      if (isWaiting(e) && (this.retries.get(e.uuid) ?? 0) >= MAX_RETRIES) {
        const m = this.marks.get(e)!;
        this.checks.set(e, ++this.checkSeq);
        this.marks.set(e, {
          ...m,
          state: 'failed',
          reason: `${m.state === 'unsequenced' ? 'not in the log' : 'not in a signed checkpoint'} after ${MAX_RETRIES} checks`,
        });
        exhausted = true;
      }
    }
    if (exhausted) this.ctx.update();
    const waiting = this.events.filter(isWaiting);
    if (waiting.length === 0) return;
    for (const e of waiting) this.retries.set(e.uuid, (this.retries.get(e.uuid) ?? 0) + 1);
    const unsequenced = waiting.filter((e) => this.marks.get(e)?.state === 'unsequenced').slice(0, 20);
    if (unsequenced.length > 0) {
      // The API adds the log index once the sequencer has appended the event: fetch it again.
      try {
        const since = unsequenced.map((e) => str(e.published)).sort()[0] || undefined;
        const fresh = asArray<LogEvent>(
          await this.ctx.api.get<LogEvent[]>(
            `${this.ctx.prefix}/api/v1/logs${query({ since, filter: uuidFilter(unsequenced.map((e) => e.uuid)), limit: 100 })}`,
            { background: true, timeoutMs: REQUEST_TIMEOUT_MS },
          ),
        );
        const byUuid = new Map(fresh.filter((e) => e && typeof e.uuid === 'string').map((e) => [e.uuid, e]));
        if (this.disposed) return;
        this.events = this.events.map((e) => {
          const next = isWaiting(e) ? byUuid.get(e.uuid) : undefined;
          if (!next) return e;
          // A wait is no verdict: the new object shows it until its own check ends.
          this.marks.set(next, this.marks.get(e)!);
          return next;
        });
      } catch {
        // tried again at the next round
      }
    }
    const current = new Set(waiting.map((e) => e.uuid));
    this.verifyAll(this.events.filter((e) => current.has(e.uuid) && isWaiting(e)));
    this.scheduleRetry();
  }

  private setTail(on: boolean): void {
    this.tail = on;
    if (on) {
      this.startTail(false);
    } else {
      this.stopTail();
    }
    this.ctx.update();
  }

  /** `background`: not at the admin's request (the first poll after ticking the box is). */
  private startTail(background: boolean): void {
    this.stopTail();
    this.tailCursor = null;
    void this.poll(background);
  }

  private stopTail(): void {
    if (this.tailTimer) clearTimeout(this.tailTimer);
    this.tailTimer = null;
  }

  /**
   * One round of the live tail. Later rounds are the console's own requests (background), and
   * none is sent while the admin has left the console idle: an unattended tail must not keep
   * the session alive.
   */
  private async poll(background = true): Promise<void> {
    if (!this.tail || this.disposed) return;
    if (background && this.ctx.activity.idle) {
      this.tailTimer = setTimeout(() => void this.poll(), TAIL_INTERVAL_MS);
      return;
    }
    try {
      let path = this.tailCursor;
      if (!path) {
        const newest = this.events.map((e) => str(e.published)).sort().pop();
        const since = newest || new Date(Date.now() - 60_000).toISOString();
        const filter = buildLogFilter(this.filters);
        path = `${this.ctx.prefix}/api/v1/logs${query({
          since,
          filter: filter || undefined,
          q: this.filters.q.trim() || undefined,
          limit: 100,
          sortOrder: 'ASCENDING',
        })}`;
      }
      const res = await this.ctx.api.call<LogEvent[]>(path, { background, timeoutMs: REQUEST_TIMEOUT_MS });
      if (!this.tail || this.disposed) return;
      const known = new Set(this.events.map((e) => e.uuid));
      const fresh = asArray<LogEvent>(res.data).filter((e) => e && typeof e.uuid === 'string' && !known.has(e.uuid));
      if (fresh.length > 0) {
        this.events = [...fresh.reverse(), ...this.events];
        this.verifyAll(fresh);
        this.ctx.update();
      }
      if (res.next) this.tailCursor = res.next;
    } catch (e) {
      this.ctx.flash(`Live tail paused for a moment: ${errorText(e)}`, 'error');
    }
    if (this.tail && !this.disposed) this.tailTimer = setTimeout(() => void this.poll(), TAIL_INTERVAL_MS);
  }

  private applyFilters(e: SubmitEvent): void {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const f: Filters = {
      since: str(data.get('since')).trim(),
      until: str(data.get('until')).trim(),
      eventType: str(data.get('eventType')).trim(),
      actor: str(data.get('actor')).trim(),
      outcome: str(data.get('outcome')).trim(),
      q: str(data.get('q')).trim(),
    };
    const bad = [
      f.since && !parseDateTime(f.since) ? 'Since' : '',
      f.until && !parseDateTime(f.until) ? 'Until' : '',
    ].filter(Boolean);
    if (bad.length) {
      this.filterError = `${bad.join(' and ')}: write a date and time like 2026-01-21 15:05 (UTC) or 2026-01-21T15:05:00Z.`;
      this.ctx.update();
      return;
    }
    this.filterError = '';
    this.filters = f;
    this.tailCursor = null;
    void this.load();
  }

  private clearFilters(): void {
    this.filters = { since: '', until: '', eventType: '', actor: '', outcome: '', q: '' };
    this.filterError = '';
    void this.load();
  }

  private openDetail(shown: LogEvent): void {
    this.ctx.openDialog({
      title: `Event ${shown.eventType ?? ''}`,
      wide: true,
      body: () => {
        // A retry may have replaced the object (same uuid): show the one whose mark is shown.
        const e = this.events.find((x) => x.uuid === shown.uuid) ?? shown;
        const mark = this.marks.get(e);
        return html`
          <dl class="facts">
            <dt>Published</dt><dd>${fmtTime(e.published)}</dd>
            <dt>Event type</dt><dd><code>${text(e.eventType)}</code></dd>
            <dt>Message</dt><dd>${text(e.displayMessage)}</dd>
            <dt>Actor</dt><dd>${who(e.actor)} (${text(e.actor?.type)}, <code>${text(e.actor?.id)}</code>)</dd>
            <dt>Outcome</dt><dd>${badge(e.outcome?.result)} ${e.outcome?.reason ? text(e.outcome.reason) : nothing}</dd>
            <dt>Client address</dt><dd>${text(e.client?.ipAddress)}</dd>
            <dt>Targets</dt><dd>${asArray<{ type?: string }>(e.target).length
              ? asArray<NonNullable<LogEvent['target']>[number]>(e.target).map((t) => html`<div>${who(t)} (${text(t.type)})</div>`)
              : '—'}</dd>
            <dt>Log position</dt><dd>${e.custos?.log?.index ?? 'not yet sequenced'}${e.custos?.log?.origin ? html` in <code>${e.custos.log.origin}</code>` : nothing}</dd>
            <dt>Verification</dt><dd>${markTemplate(`${e.uuid}-detail`, mark)}</dd>
            ${mark?.leafHash
              ? html`<dt>Leaf hash (computed here)</dt><dd><code class="hash">${mark.leafHash}</code></dd>
                  <dt>Proven in tree of size</dt><dd>${mark.treeSize}</dd>`
              : nothing}
          </dl>
          ${eventTexts(e)}
        `;
      },
    });
  }

  private checkpointPanel(): TemplateResult {
    const st = this.checkpoint;
    if (st.state === 'unknown') {
      return html`<div class="verify-panel"><p><span class="spinner" aria-hidden="true"></span>Checking the log's signed checkpoint…</p></div>`;
    }
    if (st.state === 'ok') {
      const pinned = st.pinned.filter((p) => st.signedBy.includes(p.label));
      return html`<div class="verify-panel verify-ok">
        <p>
          <strong>Log checked in this browser.</strong> Checkpoint of <code>${st.checkpoint.origin}</code> at
          size ${st.checkpoint.size}, signed by <code>${st.signedBy.join(', ')}</code>.
        </p>
        <p class="hint">
          ${pinned.map((p) =>
            p.how === 'first-use'
              ? html`Key <code>${p.label}</code> was pinned in this browser on first use (${fmtTime(p.pinnedAt)}); compare it with
                  the key your provider announced.`
              : html`Key <code>${p.label}</code> was accepted in this browser on ${fmtTime(p.pinnedAt)}.`,
          )}
          ${this.verifier.acceptedOrigin
            ? html`The log origin <code>${this.verifier.acceptedOrigin.origin}</code> was accepted in this browser on
                ${fmtTime(this.verifier.acceptedOrigin.acceptedAt)}.`
            : nothing}
          Each event's mark turns “Verified” only after its inclusion in this checkpoint was checked here.
        </p>
        <button type="button" class="secondary small" @click=${() => void this.checkAgain()}>Check again</button>
      </div>`;
    }
    return html`<div class="verify-panel verify-failed" role="alert">
      <p><strong>The log could not be verified:</strong> ${st.reason}.</p>
      ${st.newKeys && st.newKeys.length
        ? html`<p>
              If your provider announced a new log key, compare it before you trust it:
              ${st.newKeys.map((k) => html`<code class="hash">${k.vkey}</code>`)}
            </p>
            <button type="button" @click=${() => void this.acceptKeys()}>
              Trust key ${st.newKeys.map((k) => `${k.name}+${keyIdHex(k.keyId)}`).join(', ')}
            </button>`
        : nothing}
      ${st.newOrigin
        ? html`<p>
              This console expects the log <code>${this.verifier.origin}</code> (this page's address and your
              organisation); the server signs <code>${st.newOrigin}</code>, a log of the same organisation under
              another address. Accept it only if your provider moved this service to another address after your log
              began: a log keeps the address it began with.
            </p>
            <button type="button" @click=${() => void this.acceptOrigin(st.newOrigin!)}>
              Accept log origin ${st.newOrigin}
            </button>`
        : nothing}
      ${st.inconsistentWith
        ? html`<p class="hint">
              Only if this server's data was knowingly reset may you forget the checkpoint this browser remembers.
            </p>
            <button type="button" class="secondary" @click=${() => void this.forget(st.inconsistentWith!.origin)}>
              Forget the remembered checkpoint
            </button>`
        : nothing}
      <p><button type="button" class="secondary small" @click=${() => void this.checkAgain()}>Check again</button></p>
    </div>`;
  }

  private reverify(): void {
    this.marks = new WeakMap();
    this.retries.clear();
    this.verifyAll(this.events);
    this.ctx.update();
  }

  /** Fetches the events and the latest checkpoint again and checks everything anew. */
  private async checkAgain(): Promise<void> {
    await this.refreshCheckpoint();
    this.marks = new WeakMap();
    this.retries.clear();
    await this.load();
  }

  private async acceptKeys(): Promise<void> {
    if (this.checkpoint.state !== 'failed' || !this.checkpoint.newKeys) return;
    this.checkpoint = await this.verifier.acceptKeys(this.checkpoint.newKeys);
    this.reverify();
  }

  private async acceptOrigin(origin: string): Promise<void> {
    this.checkpoint = await this.verifier.acceptOrigin(origin);
    this.reverify();
  }

  private async forget(origin: string): Promise<void> {
    this.checkpoint = await this.verifier.forgetCheckpoint(origin);
    this.reverify();
  }

  private filtersForm(): TemplateResult {
    const f = this.filters;
    return html`<form class="filters" @submit=${(e: SubmitEvent) => this.applyFilters(e)} aria-describedby="log-time-hint">
      <div class="field">
        <label for="log-since">Since</label>
        <input id="log-since" name="since" .value=${f.since} placeholder="2026-01-21 15:05" autocomplete="off" />
      </div>
      <div class="field">
        <label for="log-until">Until</label>
        <input id="log-until" name="until" .value=${f.until} placeholder="now" autocomplete="off" />
      </div>
      <div class="field">
        <label for="log-type">Event type</label>
        <input id="log-type" name="eventType" list="log-type-list" .value=${f.eventType} placeholder="e.g. support.*" autocomplete="off" />
        <datalist id="log-type-list">${COMMON_EVENT_TYPES.map((t) => html`<option value=${t}></option>`)}</datalist>
      </div>
      <div class="field">
        <label for="log-actor">Actor</label>
        <input id="log-actor" name="actor" .value=${f.actor} placeholder="id, login or name" autocomplete="off" />
      </div>
      <div class="field">
        <label for="log-outcome">Outcome</label>
        <select id="log-outcome" name="outcome">
          <option value="" ?selected=${f.outcome === ''}>Any</option>
          ${OUTCOMES.map((o) => html`<option value=${o} ?selected=${f.outcome === o}>${o}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for="log-q">Keywords</label>
        <input id="log-q" name="q" type="search" .value=${f.q} autocomplete="off" />
      </div>
      <div class="filter-actions">
        <button type="submit">Apply filters</button>
        <button type="button" class="secondary" @click=${() => this.clearFilters()}>Clear</button>
      </div>
      <p id="log-time-hint" class="hint full">
        Times are UTC (“2026-01-21 15:05” or RFC 3339). Without Since, the last 7 days. A type ending in * matches a prefix.
      </p>
      ${this.filterError ? html`<p class="error full" role="alert">${this.filterError}</p>` : nothing}
    </form>
    <div class="tail">
      <input id="log-tail" type="checkbox" .checked=${this.tail} @change=${(e: Event) => this.setTail((e.target as HTMLInputElement).checked)} />
      <label for="log-tail">Live tail</label>
      <span class="hint">${this.tail
        ? this.ctx.activity.idle
          ? 'Paused: no input for a while. Press a key or click to resume.'
          : 'New events appear at the top as they happen (Until is ignored).'
        : ''}</span>
    </div>`;
  }

  private row(e: LogEvent): TemplateResult {
    const open = () => this.openDetail(e);
    return html`<tr
      data-testid=${`event-${e.uuid}`}
      class="clickable"
      tabindex="0"
      @click=${(ev: MouseEvent) => {
        if ((ev.target as Element).closest('button, a')) return;
        open();
      }}
      @keydown=${(ev: KeyboardEvent) => {
        if (ev.key === 'Enter' && ev.target === ev.currentTarget) {
          ev.preventDefault();
          open();
        }
      }}
    >
      <td class="nowrap">${fmtTime(e.published)}</td>
      <td class="verify-cell">${markTemplate(e.uuid, this.marks.get(e))}</td>
      <td><button type="button" class="link" @click=${open}>${text(e.eventType)}</button>
        ${e.displayMessage ? html`<div class="sub">${e.displayMessage}</div>` : nothing}</td>
      <td>${who(e.actor)}</td>
      <td>${badge(e.outcome?.result)}${e.outcome?.reason ? html`<div class="sub">${e.outcome.reason}</div>` : nothing}</td>
      <td>${asArray<NonNullable<LogEvent['target']>[number]>(e.target).map((t) => html`<div>${who(t)}</div>`)}</td>
    </tr>`;
  }

  render() {
    let body: TemplateResult;
    if (this.state === 'loading' && this.events.length === 0) {
      body = html`<p class="loading"><span class="spinner" aria-hidden="true"></span>Loading events…</p>`;
    } else if (this.state === 'error') {
      body = html`<div class="error" role="alert"><p>Could not load events: ${this.error}</p>
        <button type="button" class="secondary" @click=${() => void this.load()}>Try again</button></div>`;
    } else if (this.events.length === 0) {
      body = html`<p class="empty">No events match${this.tail ? ' yet; new ones will appear here' : ''}.</p>`;
    } else {
      const counts = { verified: 0, failed: 0 };
      for (const e of this.events) {
        const s = this.marks.get(e)?.state;
        if (s === 'verified') counts.verified++;
        if (s === 'failed') counts.failed++;
      }
      body = html`
        <p class="summary">
          ${this.events.length} events shown · ${counts.verified} verified${counts.failed
            ? html` · <strong class="text-bad">${counts.failed} failed verification</strong>`
            : nothing}
        </p>
        ${tableRegion(
          'System Log events',
          html`<table class="events">
            <caption class="visually-hidden">System Log events, newest first. Press Enter on a row for its detail.</caption>
            <thead>
              <tr>
                <th scope="col">Time (UTC)</th>
                <th scope="col">Verification</th>
                <th scope="col">Event</th>
                <th scope="col">Actor</th>
                <th scope="col">Outcome</th>
                <th scope="col">Targets</th>
              </tr>
            </thead>
            <tbody>${this.events.map((e) => this.row(e))}</tbody>
          </table>`,
        )}
        ${this.next
          ? html`<p><button type="button" class="secondary" ?disabled=${this.loadingMore} @click=${() => void this.more()}>
              ${this.loadingMore ? 'Loading…' : 'Load older events'}
            </button></p>`
          : nothing}
      `;
    }
    return html`${this.checkpointPanel()} ${this.filtersForm()} ${body}`;
  }
}
