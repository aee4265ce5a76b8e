// Alerts from the anomaly rules (GET /provider/api/v1/alerts). Entries are rendered defensively:
// any member may be missing or of another type.
import { html, nothing } from 'lit-html';
import { type Ctx, Loader, type View, asArray, fmtTime, show, str, tableRegion, text } from '../ui';

interface Alert {
  uuid?: string;
  published?: string;
  rule?: unknown;
  detail?: unknown;
  operator?: unknown;
  vendor?: unknown;
  tenant?: unknown;
  suspended?: unknown;
  deviceId?: unknown;
  ipAddress?: unknown;
  severity?: unknown;
}

function named(v: unknown): string {
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return str(o.login) || str(o.name) || str(o.displayName) || str(o.id) || text(v);
  }
  return text(v);
}

function detail(v: unknown) {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length === 0) return '—';
    return html`<dl class="facts compact">${entries.map(([k, val]) => html`<dt>${k}</dt><dd>${text(val)}</dd>`)}</dl>`;
  }
  return text(v);
}

export class AlertsView implements View {
  readonly title = 'Alerts';
  private readonly loader: Loader<Alert[]>;
  private timer: ReturnType<typeof setInterval>;

  constructor(ctx: Ctx) {
    this.loader = new Loader(ctx, async ({ background }) => {
      const data = await ctx.api.get<unknown>('/provider/api/v1/alerts?limit=200', { background });
      const list = Array.isArray(data) ? data : asArray<Alert>((data as { alerts?: unknown } | null)?.alerts);
      return list.filter((a): a is Alert => !!a && typeof a === 'object');
    });
    void this.loader.load();
    this.timer = setInterval(() => {
      if (!ctx.activity.idle) void this.loader.load({ quiet: true, background: true });
    }, 20_000);
  }

  dispose() {
    clearInterval(this.timer);
  }

  busy() {
    return this.loader.busy;
  }

  render() {
    return html`<p class="hint">Alerts raised by the anomaly rules (an operator reaching many tenants, repeated refused
        actions, a new device or network), newest first.</p>
      ${show(this.loader, {
        what: 'alerts',
        isEmpty: (a) => a.length === 0,
        empty: 'No anomaly rule has fired.',
        ok: (alerts) =>
          tableRegion(
            'Alerts',
            html`<table>
              <thead><tr>
                <th scope="col">When (UTC)</th><th scope="col">Rule</th><th scope="col">Operator</th><th scope="col">Vendor</th>
                <th scope="col">Device · address</th><th scope="col">Tenant</th><th scope="col">Detail</th><th scope="col">Operator suspended</th>
              </tr></thead>
              <tbody>
                ${alerts.map(
                  (a, i) => html`<tr data-testid=${`alert-${str(a.uuid) || i}`}>
                    <td class="nowrap">${fmtTime(a.published)}</td>
                    <td>${text(a.rule)} ${typeof a.severity === 'string' && a.severity !== 'INFO' ? html`<span class="badge badge-warn">${a.severity}</span>` : nothing}</td>
                    <td>${named(a.operator)}</td>
                    <td>${named(a.vendor)}</td>
                    <td><code>${text(a.deviceId)}</code><div class="sub">${text(a.ipAddress)}</div></td>
                    <td>${a.tenant === undefined || a.tenant === null ? '—' : named(a.tenant)}</td>
                    <td>${detail(a.detail)}</td>
                    <td>${a.suspended === true ? html`<span class="badge badge-bad">yes</span>` : a.suspended === false ? 'no' : nothing}</td>
                  </tr>`,
                )}
              </tbody>
            </table>`,
          ),
      })}`;
  }
}
