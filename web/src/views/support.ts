// Support access, tenant side: the policy, operators' access requests (approve for a duration,
// or deny), active grants (extend, revoke) and guarded actions waiting for a second person
// (docs/support.md).
import { type TemplateResult, html, nothing } from 'lit-html';
import { errorText } from '../api';
import {
  type Ctx,
  DURATIONS,
  Loader,
  type View,
  asArray,
  badge,
  durationSeconds,
  fmtTime,
  openActionDialog,
  show,
  str,
  tableRegion,
  text,
} from '../ui';

interface Operator {
  id?: string;
  login?: string;
  name?: string;
  status?: string;
}
interface Vendor {
  id?: string;
  name?: string;
  employingEntity?: string;
  country?: string;
  status?: string;
}
interface Device {
  id?: string;
  name?: string;
  status?: string;
  compliant?: boolean;
  failures?: string[];
  postureReportedAt?: string | null;
}
interface Grant {
  id: string;
  status?: string;
  requestId?: string;
  operatorId?: string;
  vendorId?: string;
  deviceId?: string;
  caseId?: string;
  justification?: string;
  scope?: string[];
  created?: string;
  expiresAt?: string;
  firstUsed?: string | null;
}
interface AccessRequest {
  id: string;
  status?: string;
  caseId?: string;
  justification?: string;
  scope?: string[];
  duration?: string;
  created?: string;
  expiresAt?: string;
  operator?: Operator | null;
  vendor?: Vendor | null;
  device?: Device | null;
  grant?: Grant | null;
}
interface Confirmation {
  id: string;
  grantId?: string;
  operatorId?: string;
  action?: string;
  target?: string;
  status?: string;
  created?: string;
  expiresAt?: string;
}
interface SupportCase {
  id: string;
  subject?: string;
  openedBy?: string;
  status?: string;
}

const POLICIES: Array<[string, string, string]> = [
  ['approval_required', 'Approval required', 'Every access request waits for a decision by an administrator here.'],
  [
    'auto_approve_read',
    'Approve read-only access automatically',
    'Read-only requests for cases your organisation opened are approved at once; everything else waits.',
  ],
  ['blocked', 'Blocked', 'Every request is refused. Choosing this also ends every active grant and denies every pending request.'],
];

const JUSTIFICATIONS: Record<string, string> = {
  CUSTOMER_INITIATED_SUPPORT: 'Customer-initiated support',
  PROVIDER_INITIATED_REVIEW: 'Provider-initiated review',
  INCIDENT_RESPONSE: 'Incident response',
};

const ACTIONS: Record<string, string> = {
  password_reset: 'Reset the password',
  mfa_reset: 'Reset the second factors',
  config_change: 'Change a setting',
};

const REFRESH_MS = 15_000;

function justification(j: unknown): string {
  return JUSTIFICATIONS[str(j)] ?? text(j);
}

function compliance(d: Device | null | undefined): TemplateResult {
  if (!d) return html`—`;
  if (d.compliant === true) return html`<span class="badge badge-ok">Compliant</span>`;
  if (d.compliant === false) {
    return html`<span class="badge badge-bad">Not compliant</span>${asArray<string>(d.failures).length
        ? html` <span class="sub">${asArray<string>(d.failures).join(', ')}</span>`
        : nothing}`;
  }
  return html`—`;
}

/** Duration choices no longer than `max` seconds (null: any), the asked one included. */
function durationOptions(asked: string | undefined, max: number | null): Array<[string, string]> {
  const opts = DURATIONS.filter(([d]) => max === null || (durationSeconds(d) ?? Infinity) <= max);
  if (asked && !opts.some(([d]) => d === asked)) opts.push([asked, asked]);
  return opts.sort((a, b) => (durationSeconds(a[0]) ?? 0) - (durationSeconds(b[0]) ?? 0));
}

export class SupportView implements View {
  readonly title = 'Support access';
  private readonly policy: Loader<{ policy: string }>;
  private readonly requests: Loader<AccessRequest[]>;
  private readonly grants: Loader<Grant[]>;
  private readonly confirmations: Loader<Confirmation[]>;
  private cases = new Map<string, SupportCase>();
  private targets = new Map<string, string>();
  private timer: ReturnType<typeof setInterval>;
  private savingPolicy = false;
  private pending = new Set<string>();

  constructor(private readonly ctx: Ctx) {
    const base = `${ctx.prefix}/api/v1/support`;
    this.policy = new Loader(ctx, ({ background }) => ctx.api.get<{ policy: string }>(`${base}/policy`, { background }));
    this.requests = new Loader(ctx, async ({ background }) => {
      const all = asArray<AccessRequest>(await ctx.api.get<AccessRequest[]>(`${base}/access_requests`, { background }));
      void this.loadCases(background);
      return all;
    });
    this.grants = new Loader(ctx, async ({ background }) =>
      asArray<Grant>(await ctx.api.get<Grant[]>(`${base}/grants?status=ACTIVE`, { background })),
    );
    this.confirmations = new Loader(ctx, async ({ background }) => {
      const list = asArray<Confirmation>(
        await ctx.api.get<Confirmation[]>(`${base}/confirmations?status=PENDING`, { background }),
      );
      void this.resolveTargets(list, background);
      return list;
    });
    this.loadAll();
    // A poll: sent as background, and not at all once the admin has left the console idle.
    this.timer = setInterval(() => {
      if (!ctx.activity.idle) this.loadAll(true, true);
    }, REFRESH_MS);
  }

  dispose() {
    clearInterval(this.timer);
  }

  busy() {
    return this.policy.busy || this.requests.busy || this.grants.busy || this.confirmations.busy;
  }

  /** `background`: a poll, not the admin's request nor the consequence of one. */
  private loadAll(quiet = false, background = false): void {
    const options = { quiet, background };
    void this.policy.load(options);
    void this.requests.load(options);
    void this.grants.load(options);
    void this.confirmations.load(options);
  }

  private async loadCases(background: boolean): Promise<void> {
    try {
      const list = asArray<SupportCase>(
        await this.ctx.api.get<SupportCase[]>(`${this.ctx.prefix}/api/v1/support/cases`, { background }),
      );
      this.cases = new Map(list.map((c) => [c.id, c]));
      this.ctx.update();
    } catch {
      // the case id is shown instead of its subject
    }
  }

  private async resolveTargets(list: Confirmation[], background: boolean): Promise<void> {
    for (const c of list) {
      const t = str(c.target);
      if (!t || t.startsWith('log.public') || this.targets.has(t)) continue;
      try {
        const u = await this.ctx.api.get<{ profile?: { login?: string } }>(
          `${this.ctx.prefix}/api/v1/users/${encodeURIComponent(t)}`,
          { background },
        );
        this.targets.set(t, str(u.profile?.login) || t);
      } catch {
        this.targets.set(t, t);
      }
    }
    this.ctx.update();
  }

  private requestById(id: string | undefined): AccessRequest | undefined {
    return id ? this.requests.data?.find((r) => r.id === id) : undefined;
  }

  private operatorName(operatorId: string | undefined): string {
    const r = this.requests.data?.find((x) => x.operator?.id === operatorId);
    return r?.operator ? str(r.operator.name) || str(r.operator.login) || text(operatorId) : text(operatorId);
  }

  private caseText(caseId: string | undefined): TemplateResult {
    const c = caseId ? this.cases.get(caseId) : undefined;
    return c?.subject
      ? html`${c.subject} <span class="sub">(${caseId}${c.openedBy === 'tenant' ? ', opened by your organisation' : ''})</span>`
      : html`<code>${text(caseId)}</code>`;
  }

  private async simple(id: string, path: string, done: string): Promise<void> {
    this.pending.add(id);
    this.ctx.update();
    try {
      await this.ctx.api.post(path);
      this.ctx.flash(done);
      this.loadAll(true);
    } catch (e) {
      this.ctx.flash(errorText(e), 'error');
    } finally {
      this.pending.delete(id);
      this.ctx.update();
    }
  }

  private approve(r: AccessRequest): void {
    const asked = str(r.duration) || undefined;
    const options = durationOptions(asked, durationSeconds(asked));
    openActionDialog(this.ctx, {
      title: 'Approve access',
      intro: html`<p>
        ${str(r.operator?.name) || str(r.operator?.login) || 'The operator'} of ${text(r.vendor?.name)} gets
        <strong>${asArray<string>(r.scope).join(', ') || 'the requested'}</strong> access, from device
        ${text(r.device?.name)} only, for case ${this.caseText(r.caseId)}.
      </p>`,
      fields: () => html`
        <div class="field">
          <label for="approve-duration">Duration</label>
          <select id="approve-duration" name="duration" aria-describedby="approve-duration-hint">
            ${options.map(([d, label]) => html`<option value=${d} ?selected=${d === asked}>${label}${d === asked ? ' (as asked)' : ''}</option>`)}
          </select>
          <p id="approve-duration-hint" class="hint">At most what the operator asked for${asked ? ` (${asked})` : ''}.</p>
        </div>
        <div class="field">
          <label for="approve-reason">Note (optional)</label>
          <input id="approve-reason" name="reason" maxlength="1024" />
        </div>`,
      submitLabel: 'Approve access',
      run: async (data) => {
        const body: Record<string, string> = { duration: str(data.get('duration')) };
        const reason = str(data.get('reason')).trim();
        if (reason) body.reason = reason;
        await this.ctx.api.post(`${this.ctx.prefix}/api/v1/support/access_requests/${encodeURIComponent(r.id)}/approve`, body);
        this.loadAll(true);
        return `Access approved for ${body.duration}.`;
      },
    });
  }

  private extend(g: Grant): void {
    openActionDialog(this.ctx, {
      title: 'Extend grant',
      intro: html`<p>The grant now ends ${fmtTime(g.expiresAt)}. It can last at most 24 hours from now.</p>`,
      fields: () => html`<div class="field">
        <label for="extend-duration">Duration</label>
        <select id="extend-duration" name="duration">
          ${DURATIONS.map(([d, label]) => html`<option value=${d} ?selected=${d === '1h'}>${label} more</option>`)}
        </select>
      </div>`,
      submitLabel: 'Extend grant',
      run: async (data) => {
        const duration = str(data.get('duration'));
        const res = await this.ctx.api.post<Grant>(
          `${this.ctx.prefix}/api/v1/support/grants/${encodeURIComponent(g.id)}/extend`,
          { duration },
        );
        this.loadAll(true);
        return `Grant extended; it now ends ${fmtTime(res?.expiresAt)}.`;
      },
    });
  }

  private savePolicy(e: SubmitEvent): void {
    e.preventDefault();
    const policy = str(new FormData(e.target as HTMLFormElement).get('policy'));
    if (!policy || policy === this.policy.data?.policy) return;
    const save = async () => {
      await this.ctx.api.put(`${this.ctx.prefix}/api/v1/support/policy`, { policy });
      this.loadAll(true);
      return `Support access policy is now “${POLICIES.find((p) => p[0] === policy)?.[1] ?? policy}”.`;
    };
    if (policy === 'blocked') {
      openActionDialog(this.ctx, {
        title: 'Block support access',
        intro: html`<p>Every active grant ends now and every pending request is denied. Operators cannot ask again until you change the policy.</p>`,
        submitLabel: 'Block support access',
        danger: true,
        run: save,
      });
      return;
    }
    this.savingPolicy = true;
    this.ctx.update();
    save()
      .then((m) => this.ctx.flash(m))
      .catch((err) => this.ctx.flash(errorText(err), 'error'))
      .finally(() => {
        this.savingPolicy = false;
        this.ctx.update();
      });
  }

  private policySection(): TemplateResult {
    return html`<section>
      <h2 id="policy-h">Policy</h2>
      ${show(this.policy, {
        what: 'the support access policy',
        ok: (p) => html`<form class="policy" @submit=${(e: SubmitEvent) => this.savePolicy(e)}>
          <fieldset>
            <legend>Support access policy</legend>
            ${POLICIES.map(
              ([value, label, help]) => html`<div class="radio">
                <input type="radio" id=${`policy-${value}`} name="policy" value=${value} ?checked=${p.policy === value}
                  aria-describedby=${`policy-${value}-help`} />
                <label for=${`policy-${value}`}>${label}</label>
                <p id=${`policy-${value}-help`} class="hint">${help}</p>
              </div>`,
            )}
          </fieldset>
          <button type="submit" ?disabled=${this.savingPolicy}>${this.savingPolicy ? 'Saving…' : 'Save policy'}</button>
        </form>`,
      })}
    </section>`;
  }

  private requestCard(r: AccessRequest): TemplateResult {
    const busy = this.pending.has(r.id);
    return html`<li class="card" data-testid=${`request-${r.id}`}>
      <div class="card-head">
        <h3>${str(r.operator?.name) || str(r.operator?.login) || 'Unknown operator'}
          <span class="sub">${text(r.operator?.login)}</span></h3>
        ${badge(r.status)}
      </div>
      <dl class="facts compact">
        <dt>Vendor</dt><dd>${text(r.vendor?.name)} ${r.vendor?.status === 'SUSPENDED' ? badge('SUSPENDED') : nothing}</dd>
        <dt>Employing entity</dt><dd>${text(r.vendor?.employingEntity)}</dd>
        <dt>Country</dt><dd>${text(r.vendor?.country)}</dd>
        <dt>Device</dt><dd>${text(r.device?.name)} ${r.device?.status && r.device.status !== 'ACTIVE' ? badge(r.device.status) : nothing}</dd>
        <dt>Device compliance</dt><dd>${compliance(r.device)}</dd>
        <dt>Case</dt><dd>${this.caseText(r.caseId)}</dd>
        <dt>Justification</dt><dd>${justification(r.justification)}</dd>
        <dt>Access asked for</dt><dd>${asArray<string>(r.scope).join(', ') || '—'} for ${text(r.duration)}</dd>
        <dt>Asked</dt><dd>${fmtTime(r.created)}</dd>
        <dt>Request expires</dt><dd>${fmtTime(r.expiresAt)}</dd>
      </dl>
      <div class="button-row">
        <button type="button" ?disabled=${busy} @click=${() => this.approve(r)}>Approve</button>
        <button type="button" class="danger" ?disabled=${busy}
          @click=${() => void this.simple(r.id, `${this.ctx.prefix}/api/v1/support/access_requests/${encodeURIComponent(r.id)}/deny`, 'Request denied.')}>Deny</button>
      </div>
    </li>`;
  }

  private requestsSection(): TemplateResult {
    return html`<section>
      <h2 id="requests-h">Pending requests</h2>
      ${show(this.requests, {
        what: 'access requests',
        isEmpty: (all) => !all.some((r) => r.status === 'PENDING'),
        empty: 'No operator is waiting for access.',
        ok: (all) => html`<ul class="cards">${all.filter((r) => r.status === 'PENDING').map((r) => this.requestCard(r))}</ul>`,
      })}
    </section>`;
  }

  private grantsSection(): TemplateResult {
    return html`<section>
      <h2 id="grants-h">Active grants</h2>
      ${show(this.grants, {
        what: 'grants',
        isEmpty: (g) => g.length === 0,
        empty: 'No operator has access now.',
        ok: (grants) =>
          tableRegion(
            'Active grants',
            html`<table>
              <thead><tr>
                <th scope="col">Operator</th><th scope="col">Vendor</th><th scope="col">Device</th><th scope="col">Case</th>
                <th scope="col">Access</th><th scope="col">Ends</th><th scope="col">First used</th>
                <th scope="col"><span class="visually-hidden">Actions</span></th>
              </tr></thead>
              <tbody>
                ${grants.map((g) => {
                  const req = this.requestById(g.requestId);
                  const busy = this.pending.has(g.id);
                  return html`<tr data-testid=${`grant-${g.id}`}>
                    <td>${this.operatorName(g.operatorId)}</td>
                    <td>${text(req?.vendor?.name ?? g.vendorId)}</td>
                    <td>${text(req?.device?.name ?? g.deviceId)}</td>
                    <td>${this.caseText(g.caseId)}</td>
                    <td>${asArray<string>(g.scope).join(', ') || '—'}<div class="sub">${justification(g.justification)}</div></td>
                    <td class="nowrap">${fmtTime(g.expiresAt)}</td>
                    <td class="nowrap">${fmtTime(g.firstUsed)}</td>
                    <td class="nowrap">
                      <button type="button" class="secondary small" ?disabled=${busy} @click=${() => this.extend(g)}>Extend</button>
                      <button type="button" class="danger small" ?disabled=${busy}
                        @click=${() => void this.simple(g.id, `${this.ctx.prefix}/api/v1/support/grants/${encodeURIComponent(g.id)}/revoke`, 'Grant revoked.')}>Revoke</button>
                    </td>
                  </tr>`;
                })}
              </tbody>
            </table>`,
          ),
      })}
    </section>`;
  }

  private targetText(t: string | undefined): string {
    if (!t) return '—';
    if (t === 'log.public=true') return 'Make the System Log public';
    if (t === 'log.public=false') return 'Make the System Log private';
    return this.targets.get(t) ?? t;
  }

  private confirmationsSection(): TemplateResult {
    return html`<section>
      <h2 id="confirmations-h">Actions waiting for your confirmation</h2>
      <p class="hint">An operator with a grant tried a guarded action; it runs only when a second person here confirms it.</p>
      ${show(this.confirmations, {
        what: 'confirmations',
        isEmpty: (c) => c.length === 0,
        empty: 'No guarded action is waiting.',
        ok: (list) =>
          tableRegion(
            'Actions waiting for confirmation',
            html`<table>
              <thead><tr>
                <th scope="col">Action</th><th scope="col">On</th><th scope="col">Operator</th><th scope="col">Asked</th>
                <th scope="col">Lapses</th><th scope="col"><span class="visually-hidden">Decision</span></th>
              </tr></thead>
              <tbody>
                ${list.map((c) => {
                  const busy = this.pending.has(c.id);
                  const path = `${this.ctx.prefix}/api/v1/support/confirmations/${encodeURIComponent(c.id)}`;
                  return html`<tr data-testid=${`confirmation-${c.id}`}>
                    <td>${ACTIONS[str(c.action)] ?? text(c.action)}</td>
                    <td>${this.targetText(c.target)}</td>
                    <td>${this.operatorName(c.operatorId)}</td>
                    <td class="nowrap">${fmtTime(c.created)}</td>
                    <td class="nowrap">${fmtTime(c.expiresAt)}</td>
                    <td class="nowrap">
                      <button type="button" class="small" ?disabled=${busy} @click=${() => void this.simple(c.id, `${path}/confirm`, 'Action confirmed.')}>Confirm</button>
                      <button type="button" class="danger small" ?disabled=${busy} @click=${() => void this.simple(c.id, `${path}/deny`, 'Action denied.')}>Deny</button>
                    </td>
                  </tr>`;
                })}
              </tbody>
            </table>`,
          ),
      })}
    </section>`;
  }

  render() {
    return html`${this.requestsSection()} ${this.confirmationsSection()} ${this.grantsSection()} ${this.policySection()}`;
  }
}
