// Incidents: declare, scope (potential vs confirmed tenants), a timeline picture per affected
// tenant, evidence packages, notification and closing (docs/incidents.md).
import { type TemplateResult, html, nothing } from 'lit-html';
import { ApiError, errorText } from '../api';
import {
  type Ctx,
  Loader,
  type View,
  asArray,
  badge,
  fmtTime,
  openActionDialog,
  parseDateTime,
  saveFile,
  show,
  splitList,
  str,
  tableRegion,
  text,
} from '../ui';
import { type TimelineEntry, layoutTimeline, timelineSvg, kindOf } from './timeline';
import { type Vendor, vendorMap } from './vendors';

interface Window {
  start?: string;
  end?: string;
}

interface Incident {
  id: string;
  title?: string;
  status?: string;
  indicators?: Record<string, unknown>;
  window?: Window;
  compromiseWindow?: Window;
  notes?: string;
  created?: string;
  updated?: string;
  createdBy?: string;
  scope?: { potential?: number; confirmed?: number } | null;
}

interface ScopeTenant {
  id?: string;
  name: string;
  confirmed?: boolean;
  views?: number;
  attempts?: number;
  refusals?: number;
  successes?: number;
  grantsUsed?: string[];
  events?: number;
  timeline?: TimelineEntry[];
}

interface Scope {
  window?: Window;
  compromiseWindow?: Window;
  potential?: number;
  confirmed?: number;
  rowsExamined?: number;
  elapsedMs?: number;
  tenants?: ScopeTenant[];
}

interface Notification {
  id?: string;
  channel?: string;
  status?: string;
  attempts?: number;
  lastError?: string | null;
  delivered?: string | null;
  acknowledged?: string | null;
}

interface Notifications {
  tenants?: Array<{ tenantName?: string; inScope?: boolean; confirmed?: boolean; notifications?: Notification[] }>;
}

const INDICATORS: Array<[string, string]> = [
  ['operatorIds', 'Operators'],
  ['vendorIds', 'Vendors'],
  ['deviceIds', 'Devices'],
  ['sessionIds', 'Sessions'],
  ['ipRanges', 'IP ranges'],
];

function windowText(w: Window | undefined): string {
  return w ? `${fmtTime(w.start)} – ${fmtTime(w.end)}` : '—';
}

// ---------------------------------------------------------------------------------------------
// The list and the declaration form.

export class IncidentsView implements View {
  readonly title = 'Incidents';
  private readonly loader: Loader<Incident[]>;
  private opening = false;

  constructor(private readonly ctx: Ctx) {
    this.loader = new Loader(ctx, async () => asArray<Incident>(await ctx.api.get<Incident[]>('/provider/api/v1/incidents?limit=100')));
    void this.loader.load();
  }

  busy() {
    return this.loader.busy || this.opening;
  }

  private async declare(): Promise<void> {
    this.opening = true;
    this.ctx.update();
    const vendors = await vendorMap(this.ctx);
    this.opening = false;
    openActionDialog(this.ctx, {
      title: 'Declare incident',
      wide: true,
      intro: html`<p>
        Say what is known about the attacker and when it was active. Times are UTC (“2022-01-21 15:05” or RFC 3339).
        Lists take commas or new lines. The incident is scoped at once.
      </p>`,
      fields: () => declareFields([...vendors.values()]),
      submitLabel: 'Declare',
      run: async (data) => {
        const body = await this.definition(data);
        const incident = await this.ctx.api.post<Incident>('/provider/api/v1/incidents', body);
        let scoped = true;
        try {
          await this.ctx.api.post(`/provider/api/v1/incidents/${encodeURIComponent(incident.id)}/scope`);
        } catch {
          scoped = false;
        }
        this.ctx.navigate(`#/incidents/${encodeURIComponent(incident.id)}`);
        return scoped ? `Incident declared and scoped.` : `Incident declared; scoping failed, try “Scope again”.`;
      },
    });
  }

  /** The POST /incidents body from the form; names are resolved to ids where that is easy. */
  private async definition(data: FormData): Promise<Record<string, unknown>> {
    const title = str(data.get('title')).trim();
    const problems: string[] = [];
    if (!title) problems.push('Title: give the incident a title.');
    const win = (startName: string, endName: string, label: string, required: boolean) => {
      const s = str(data.get(startName)).trim();
      const e = str(data.get(endName)).trim();
      if (!s && !e && !required) return undefined;
      const start = parseDateTime(s);
      const end = parseDateTime(e);
      if (!start || !end) {
        problems.push(`${label}: give a start and an end, e.g. 2022-01-21 15:05.`);
        return undefined;
      }
      if (start >= end) problems.push(`${label}: the start must be before the end.`);
      return { start, end };
    };
    const window = win('windowStart', 'windowEnd', 'Window', true);
    const compromiseWindow = win('compromiseStart', 'compromiseEnd', 'Compromise window', false);
    const indicators: Record<string, string[]> = {};
    const vendor = str(data.get('vendor'));
    if (vendor) indicators.vendorIds = [vendor];
    const operators = await this.resolveOperators(splitList(str(data.get('operators'))));
    if (operators.length) indicators.operatorIds = operators;
    const devices = await this.resolveDevices(splitList(str(data.get('devices'))));
    if (devices.length) indicators.deviceIds = devices;
    const ranges = splitList(str(data.get('ipRanges')));
    if (ranges.length) indicators.ipRanges = ranges;
    const sessions = splitList(str(data.get('sessions')));
    if (sessions.length) indicators.sessionIds = sessions;
    if (Object.keys(indicators).length === 0) problems.push('Indicators: give at least one vendor, operator, device, IP range or session.');
    if (problems.length) throw new Error(problems.join(' '));
    const body: Record<string, unknown> = { title, indicators, window };
    if (compromiseWindow) body.compromiseWindow = compromiseWindow;
    const notes = str(data.get('notes')).trim();
    if (notes) body.notes = notes;
    return body;
  }

  /** Operators may be given by login (looked up in the provider tenant) or by user id. */
  private async resolveOperators(values: string[]): Promise<string[]> {
    return Promise.all(
      values.map(async (v) => {
        if (!v.includes('@')) return v;
        try {
          const u = await this.ctx.api.get<{ id: string }>(`${this.ctx.prefix}/api/v1/users/${encodeURIComponent(v)}`);
          return u.id;
        } catch {
          throw new Error(`Operators: no provider user has the login ${v}.`);
        }
      }),
    );
  }

  /** Devices may be given by name (looked up among the managed devices) or by id. */
  private async resolveDevices(values: string[]): Promise<string[]> {
    if (values.length === 0) return values;
    let byName = new Map<string, string>();
    try {
      const list = asArray<{ id: string; name?: string }>(await this.ctx.api.get('/provider/api/v1/devices'));
      byName = new Map(list.filter((d) => d.name).map((d) => [d.name!, d.id]));
      const ids = new Set(list.map((d) => d.id));
      return values.map((v) => (ids.has(v) ? v : (byName.get(v) ?? v)));
    } catch {
      return values;
    }
  }

  render() {
    return html`
      <div class="toolbar">
        <button type="button" ?disabled=${this.opening} @click=${() => void this.declare()}>Declare incident</button>
      </div>
      ${show(this.loader, {
        what: 'incidents',
        isEmpty: (l) => l.length === 0,
        empty: 'No incident has been declared.',
        ok: (list) =>
          tableRegion(
            'Incidents',
            html`<table>
              <thead><tr>
                <th scope="col">Incident</th><th scope="col">Status</th><th scope="col">Declared</th>
                <th scope="col">Window</th><th scope="col">Potential</th><th scope="col">Confirmed</th>
              </tr></thead>
              <tbody>
                ${list.map(
                  (i) => html`<tr data-testid=${`incident-${i.id}`}>
                    <td><a href=${`#/incidents/${encodeURIComponent(i.id)}`}>${text(i.title)}</a><div class="sub"><code>${i.id}</code></div></td>
                    <td>${badge(i.status)}</td>
                    <td class="nowrap">${fmtTime(i.created)}</td>
                    <td>${windowText(i.window)}</td>
                    <td>${i.scope ? text(i.scope.potential) : 'not scoped'}</td>
                    <td>${i.scope ? text(i.scope.confirmed) : '—'}</td>
                  </tr>`,
                )}
              </tbody>
            </table>`,
          ),
      })}
    `;
  }
}

function declareFields(vendors: Vendor[]): TemplateResult {
  const area = (id: string, name: string, label: string, hint: string) => html`<div class="field">
    <label for=${id}>${label}</label>
    <textarea id=${id} name=${name} rows="2" aria-describedby=${`${id}-hint`} autocapitalize="none" spellcheck="false"></textarea>
    <p id=${`${id}-hint`} class="hint">${hint}</p>
  </div>`;
  return html`
    <div class="field">
      <label for="inc-title">Title</label>
      <input id="inc-title" name="title" required maxlength="200" autofocus />
    </div>
    <fieldset class="grid2">
      <legend>When the indicated principals are suspect</legend>
      <div class="field"><label for="inc-window-start">Window start</label>
        <input id="inc-window-start" name="windowStart" required placeholder="2022-01-16 00:00" autocomplete="off" /></div>
      <div class="field"><label for="inc-window-end">Window end</label>
        <input id="inc-window-end" name="windowEnd" required placeholder="2022-01-22 00:00" autocomplete="off" /></div>
    </fieldset>
    <fieldset class="grid2">
      <legend>When the compromise is confirmed (optional; default the window)</legend>
      <div class="field"><label for="inc-comp-start">Compromise start</label>
        <input id="inc-comp-start" name="compromiseStart" placeholder="2022-01-21 15:05" autocomplete="off" /></div>
      <div class="field"><label for="inc-comp-end">Compromise end</label>
        <input id="inc-comp-end" name="compromiseEnd" placeholder="2022-01-21 15:30" autocomplete="off" /></div>
    </fieldset>
    <fieldset>
      <legend>Indicators (at least one)</legend>
      <div class="field">
        <label for="inc-vendor">Vendor</label>
        <select id="inc-vendor" name="vendor">
          <option value="">None</option>
          ${vendors.map((v) => html`<option value=${v.id}>${text(v.name)}${v.status === 'SUSPENDED' ? ' (suspended)' : ''}</option>`)}
        </select>
      </div>
      ${area('inc-operators', 'operators', 'Operators', 'Logins or user ids of provider users.')}
      ${area('inc-devices', 'devices', 'Devices', 'Device names or ids.')}
      ${area('inc-ip', 'ipRanges', 'IP ranges', 'CIDR ranges or single addresses, e.g. 203.0.113.0/24.')}
      ${area('inc-sessions', 'sessions', 'Sessions', 'Provider session ids of the operators.')}
    </fieldset>
    <div class="field">
      <label for="inc-notes">Notes</label>
      <textarea id="inc-notes" name="notes" rows="2" maxlength="10000"></textarea>
    </div>
  `;
}

// ---------------------------------------------------------------------------------------------
// One incident.

export class IncidentDetailView implements View {
  private readonly incident: Loader<Incident>;
  private readonly scope: Loader<Scope | null>;
  private readonly notifications: Loader<Notifications>;
  private readonly base: string;
  private scoping = false;
  private downloading = new Set<string>();
  private shown = new Set<string>();

  constructor(
    private readonly ctx: Ctx,
    private readonly id: string,
  ) {
    this.base = `/provider/api/v1/incidents/${encodeURIComponent(id)}`;
    this.incident = new Loader(ctx, () => ctx.api.get<Incident>(this.base));
    this.scope = new Loader(ctx, async () => {
      try {
        return await ctx.api.get<Scope>(`${this.base}/scope`);
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }
    });
    this.notifications = new Loader(ctx, () => ctx.api.get<Notifications>(`${this.base}/notifications`));
    void this.incident.load();
    void this.scope.load();
    void this.notifications.load();
  }

  get title() {
    return this.incident.data?.title ? `Incident: ${this.incident.data.title}` : 'Incident';
  }

  busy() {
    return this.incident.busy || this.scope.busy || this.scoping;
  }

  private async runScope(): Promise<void> {
    this.scoping = true;
    this.ctx.update();
    try {
      const result = await this.ctx.api.post<Scope>(`${this.base}/scope`);
      this.scope.data = result;
      this.scope.state = 'ok';
      this.ctx.flash(`Scoped: ${text(result?.potential)} potential, ${text(result?.confirmed)} confirmed tenants.`);
      void this.incident.load({ quiet: true });
      void this.notifications.load({ quiet: true });
    } catch (e) {
      this.ctx.flash(`Scoping failed: ${errorText(e)}`, 'error');
    } finally {
      this.scoping = false;
      this.ctx.update();
    }
  }

  private notify(): void {
    openActionDialog(this.ctx, {
      title: 'Notify tenants',
      intro: html`<p>Each security contact of each tenant of the audience gets a signed notification with a link to its
        evidence. Contacts already notified for this incident are not notified again.</p>`,
      fields: () => html`<div class="field">
        <label for="notify-audience">Audience</label>
        <select id="notify-audience" name="audience">
          <option value="potential">Every tenant of the potential scope</option>
          <option value="confirmed">Only the confirmed tenants</option>
        </select>
      </div>`,
      submitLabel: 'Send notifications',
      run: async (data) => {
        const r = await this.ctx.api.post<Record<string, unknown>>(`${this.base}/notify`, { audience: str(data.get('audience')) });
        void this.incident.load({ quiet: true });
        void this.notifications.load({ quiet: true });
        return `Queued ${text(r?.notifications ?? 0)} notifications to ${text(r?.tenants ?? 0)} tenants` +
          `${Number(r?.tenantsWithoutContacts) > 0 ? `; ${text(r?.tenantsWithoutContacts)} tenants have no security contact` : ''}.`;
      },
    });
  }

  private close(): void {
    openActionDialog(this.ctx, {
      title: 'Close incident',
      intro: html`<p>Nothing more can be done on a closed incident; notified tenants can still download their evidence.</p>`,
      fields: () => html`<div class="field">
        <label for="close-notes">Closing notes</label>
        <textarea id="close-notes" name="notes" rows="3" maxlength="10000"></textarea>
      </div>`,
      submitLabel: 'Close incident',
      danger: true,
      run: async (data) => {
        const notes = str(data.get('notes')).trim();
        await this.ctx.api.post(`${this.base}/close`, notes ? { notes } : undefined);
        void this.incident.load({ quiet: true });
        return 'The incident is closed.';
      },
    });
  }

  private async download(path: string, fallback: string, key: string): Promise<void> {
    this.downloading.add(key);
    this.ctx.update();
    try {
      const { blob, filename } = await this.ctx.api.download(path, fallback);
      saveFile(blob, filename);
      this.ctx.flash(`Saved ${filename}.`);
    } catch (e) {
      const msg =
        e instanceof ApiError && e.status === 503
          ? 'The log has not signed over the evidence yet (is the sequencer running?). Try again in a moment.'
          : errorText(e);
      this.ctx.flash(`Download failed: ${msg}`, 'error');
    } finally {
      this.downloading.delete(key);
      this.ctx.update();
    }
  }

  private evidence(tenant: string): void {
    void this.download(
      `${this.base}/evidence/${encodeURIComponent(tenant)}`,
      `evidence-${this.id}-${tenant}.json`,
      `evidence:${tenant}`,
    );
  }

  private notificationStatus(tenant: string): TemplateResult | string {
    const t = asArray<NonNullable<Notifications['tenants']>[number]>(this.notifications.data?.tenants).find(
      (x) => x.tenantName === tenant,
    );
    const list = asArray<Notification>(t?.notifications);
    if (this.notifications.state === 'error') return '—';
    if (list.length === 0) return html`<span class="sub">not notified</span>`;
    const count = (s: string) => list.filter((n) => n.status === s).length;
    const acknowledged = list.filter((n) => n.acknowledged).length;
    const failed = list.filter((n) => n.status === 'FAILED');
    const pending = list.filter((n) => n.status === 'PENDING');
    return html`${count('DELIVERED') ? html`<span class="badge badge-ok">${count('DELIVERED')} delivered</span> ` : nothing}
      ${pending.length ? html`<span class="badge badge-warn">${pending.length} pending</span> ` : nothing}
      ${failed.length ? html`<span class="badge badge-bad">${failed.length} failed</span> ` : nothing}
      ${acknowledged ? html`<span class="badge badge-info">${acknowledged} acknowledged</span>` : nothing}
      ${[...failed, ...pending]
        .filter((n) => n.lastError)
        .slice(0, 1)
        .map((n) => html`<div class="sub">last error: ${n.lastError} (${text(n.attempts)} attempts)</div>`)}`;
  }

  private header(i: Incident): TemplateResult {
    const closed = i.status === 'CLOSED';
    return html`
      <dl class="facts">
        <dt>Status</dt><dd>${badge(i.status)}</dd>
        <dt>Incident id</dt><dd><code>${i.id}</code></dd>
        <dt>Declared</dt><dd>${fmtTime(i.created)} by <code>${text(i.createdBy)}</code></dd>
        <dt>Window</dt><dd>${windowText(i.window)}</dd>
        <dt>Compromise window</dt><dd>${windowText(i.compromiseWindow)}</dd>
        ${INDICATORS.filter(([k]) => asArray(i.indicators?.[k]).length).map(
          ([k, label]) => html`<dt>${label}</dt><dd>${asArray<string>(i.indicators?.[k]).map((v) => html`<code>${v}</code> `)}</dd>`,
        )}
        ${i.notes ? html`<dt>Notes</dt><dd class="pre">${i.notes}</dd>` : nothing}
      </dl>
      <div class="button-row">
        <button type="button" ?disabled=${closed || this.scoping} @click=${() => void this.runScope()}>
          ${this.scoping ? 'Scoping…' : this.scope.data ? 'Scope again' : 'Scope now'}
        </button>
        <button type="button" class="secondary" ?disabled=${closed || !this.scope.data} @click=${() => this.notify()}>Notify tenants</button>
        <button type="button" class="secondary" ?disabled=${this.downloading.has('report')}
          @click=${() => void this.download(`${this.base}/report?format=html`, `report-${this.id}.html`, 'report')}>Download report</button>
        <button type="button" class="danger" ?disabled=${closed} @click=${() => this.close()}>Close incident</button>
      </div>`;
  }

  private tenantTimeline(s: Scope, t: ScopeTenant): TemplateResult {
    const w = t.confirmed && s.compromiseWindow ? s.compromiseWindow : (s.window ?? s.compromiseWindow);
    const timeline = asArray<TimelineEntry>(t.timeline);
    let start = Date.parse(str(w?.start));
    let end = Date.parse(str(w?.end));
    if (Number.isNaN(start) || Number.isNaN(end) || start >= end) {
      const times = timeline.map((e) => Date.parse(str(e.time))).filter((x) => !Number.isNaN(x));
      start = Math.min(...times, Date.now());
      end = Math.max(...times, start + 60_000);
    }
    // Activity often fills a few minutes of a long window: zoom to it (within the window).
    const inside = timeline.map((e) => Date.parse(str(e.time))).filter((x) => x >= start && x <= end);
    let zoomed = false;
    if (inside.length > 0) {
      const first = Math.min(...inside);
      const last = Math.max(...inside);
      if (last - first < 0.25 * (end - start)) {
        const pad = Math.max((last - first) * 0.15, 30_000);
        start = Math.max(start, first - pad);
        end = Math.min(end, last + pad);
        zoomed = true;
      }
    }
    const layout = layoutTimeline(timeline, { start, end }, t.name);
    return html`<figure class="timeline-figure">
      <figcaption>
        <strong>${t.name}</strong> ${t.confirmed ? html`<span class="badge badge-bad">confirmed</span>` : html`<span class="badge badge-warn">potential</span>`}
        — ${zoomed ? 'the activity in ' : ''}${t.confirmed ? 'the compromise window' : 'the whole window'},
        ${windowText({ start: new Date(start).toISOString(), end: new Date(end).toISOString() })}
        ${layout.outside > 0 ? html`<span class="sub">; ${layout.outside} events outside it are in the table</span>` : nothing}
      </figcaption>
      <div class="timeline-scroll" role="region" aria-label=${`Timeline picture of ${t.name}`} tabindex="0">
        ${timelineSvg(t.name, layout)}
      </div>
      <details>
        <summary>${t.name}: the timeline as a table (${timeline.length} events)</summary>
        ${tableRegion(
          `Timeline of ${t.name}`,
          html`<table>
            <thead><tr>
              <th scope="col">Time (UTC)</th><th scope="col">What</th><th scope="col">Outcome</th><th scope="col">Operator</th>
              <th scope="col">Device · session</th><th scope="col">Read</th><th scope="col">In compromise</th>
            </tr></thead>
            <tbody>
              ${timeline.map(
                (e) => html`<tr class=${`tl-${kindOf(e)}`}>
                  <td class="nowrap">${fmtTime(e.time)}</td>
                  <td><code>${text(e.eventType)}</code></td>
                  <td>${badge(e.outcome)} ${e.reason ? html`<span class="sub">${e.reason}</span>` : nothing}</td>
                  <td><code>${text(e.operatorId)}</code></td>
                  <td><code>${text(e.deviceId)}</code> · <code>${text(e.sessionId)}</code>${e.ip ? html`<div class="sub">${e.ip}</div>` : nothing}</td>
                  <td>${text(e.resource)}${e.fields ? html`<div class="sub">fields: ${e.fields}</div>` : nothing}</td>
                  <td>${e.confirmed ? 'yes' : 'no'}</td>
                </tr>`,
              )}
            </tbody>
          </table>`,
        )}
      </details>
    </figure>`;
  }

  private scopeSection(s: Scope | null): TemplateResult {
    if (!s) {
      return html`<p class="empty">Not scoped yet. “Scope now” finds the tenants the indicators reached.</p>`;
    }
    const tenants = asArray<ScopeTenant>(s.tenants).filter((t) => t && typeof t.name === 'string');
    const confirmed = tenants.filter((t) => t.confirmed);
    const timelines = tenants.filter((t) => t.confirmed || this.shown.has(t.name));
    return html`
      <p class="summary">
        ${text(s.potential ?? tenants.length)} potential and ${text(s.confirmed ?? confirmed.length)} confirmed tenants
        ${s.rowsExamined !== undefined ? html` · ${text(s.rowsExamined)} index rows examined` : nothing}
        ${s.elapsedMs !== undefined ? html` in ${Number(s.elapsedMs).toFixed(0)} ms` : nothing}.
      </p>
      <div class="scopes">
        <section class="scope-box" data-testid="scope-potential" aria-labelledby="scope-potential-h">
          <h3 id="scope-potential-h">Potential scope (${tenants.length})</h3>
          <p class="hint">Every tenant an indicated principal reached in the window.</p>
          ${tenants.length
            ? html`<ul class="names">${tenants.map((t) => html`<li>${t.name}</li>`)}</ul>`
            : html`<p class="empty">No tenant.</p>`}
        </section>
        <section class="scope-box confirmed" data-testid="scope-confirmed" aria-labelledby="scope-confirmed-h">
          <h3 id="scope-confirmed-h">Confirmed scope (${confirmed.length})</h3>
          <p class="hint">Tenants the compromised device, session or address reached in the compromise window.</p>
          ${confirmed.length
            ? html`<ul class="names">${confirmed.map((t) => html`<li>${t.name}</li>`)}</ul>`
            : html`<p class="empty">No tenant.</p>`}
        </section>
      </div>
      <h2 id="tenants-h">Tenants</h2>
      ${tenants.length === 0
        ? html`<p class="empty">No tenant was reached.</p>`
        : tableRegion(
            'Tenants of the scope',
            html`<table>
              <thead><tr>
                <th scope="col">Tenant</th><th scope="col">Scope</th><th scope="col">Views</th><th scope="col">Attempts</th>
                <th scope="col">Refusals</th><th scope="col">Successes</th><th scope="col">Notification</th>
                <th scope="col"><span class="visually-hidden">Actions</span></th>
              </tr></thead>
              <tbody>
                ${tenants.map((t) => {
                  const key = `evidence:${t.name}`;
                  return html`<tr data-testid=${`scope-tenant-${t.name}`}>
                    <th scope="row">${t.name}</th>
                    <td>${t.confirmed ? html`<span class="badge badge-bad">confirmed</span>` : html`<span class="badge badge-warn">potential</span>`}</td>
                    <td>${text(t.views ?? 0)}</td>
                    <td>${text(t.attempts ?? 0)}</td>
                    <td>${text(t.refusals ?? 0)}</td>
                    <td>${text(t.successes ?? 0)}</td>
                    <td>${this.notificationStatus(t.name)}</td>
                    <td class="nowrap">
                      <button type="button" class="secondary small" ?disabled=${this.downloading.has(key)} @click=${() => this.evidence(t.name)}>
                        ${this.downloading.has(key) ? 'Preparing…' : html`Download evidence<span class="visually-hidden"> of ${t.name}</span>`}
                      </button>
                      ${t.confirmed || this.shown.has(t.name)
                        ? nothing
                        : html`<button type="button" class="secondary small" @click=${() => {
                            this.shown.add(t.name);
                            this.ctx.update();
                          }}>Show timeline<span class="visually-hidden"> of ${t.name}</span></button>`}
                    </td>
                  </tr>`;
                })}
              </tbody>
            </table>`,
          )}
      <h2>Timelines</h2>
      <p class="hint">One lane per operator session (device · session); hover or focus a mark for what happened. The tables below
        each picture hold the same events.</p>
      ${timelines.length
        ? timelines.map((t) => this.tenantTimeline(s, t))
        : html`<p class="empty">No tenant is confirmed; use “Show timeline” on a tenant above.</p>`}
    `;
  }

  render() {
    return html`
      <p><a href="#/incidents">← All incidents</a></p>
      ${show(this.incident, { what: 'the incident', ok: (i) => this.header(i) })}
      <section>
        <h2 id="scope-h">Scope</h2>
        ${this.scoping && !this.scope.data ? html`<p class="loading"><span class="spinner" aria-hidden="true"></span>Scoping…</p>` : nothing}
        ${show(this.scope, { what: 'the scope', ok: (s) => this.scopeSection(s) })}
      </section>
      ${this.notifications.state === 'error'
        ? html`<p class="error" role="alert">Could not load the notification status: ${errorText(this.notifications.error)}</p>`
        : nothing}
    `;
  }
}

