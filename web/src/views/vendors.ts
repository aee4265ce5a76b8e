// Vendors: the companies whose staff work as support operators, with the kill switch.
import { html } from 'lit-html';
import { type Ctx, Loader, type View, asArray, badge, fmtTime, infoDialog, openActionDialog, show, str, tableRegion, text } from '../ui';

export interface Vendor {
  id: string;
  name?: string;
  employingEntity?: string;
  country?: string;
  status?: string;
  created?: string;
  statusChanged?: string;
}

interface KillSwitchResult extends Vendor {
  revoked?: { sessions?: number; tokens?: number; grants?: number; devices?: number };
}

export class VendorsView implements View {
  readonly title = 'Vendors';
  private readonly loader: Loader<Vendor[]>;

  constructor(private readonly ctx: Ctx) {
    this.loader = new Loader(ctx, async () => asArray<Vendor>(await ctx.api.get<Vendor[]>('/provider/api/v1/vendors')));
    void this.loader.load();
  }

  busy() {
    return this.loader.busy;
  }

  private suspend(v: Vendor): void {
    openActionDialog(this.ctx, {
      title: `Suspend ${text(v.name)}?`,
      intro: html`<p>
          In one step: every provider session of its operators ends, every operator token is revoked, every active
          grant of its operators in every tenant is revoked, and every device of the vendor is revoked.
        </p>
        <p><strong>Reinstating the vendor later does not bring any of this back.</strong></p>`,
      fields: () => html`<div class="field">
        <label for="suspend-reason">Reason</label>
        <input id="suspend-reason" name="reason" maxlength="1024" placeholder="e.g. workstation compromise reported" />
      </div>`,
      submitLabel: 'Suspend vendor',
      danger: true,
      run: async (data) => {
        const reason = str(data.get('reason')).trim();
        const res = await this.ctx.api.post<KillSwitchResult>(
          `/provider/api/v1/vendors/${encodeURIComponent(v.id)}/lifecycle/suspend`,
          reason ? { reason } : undefined,
        );
        void this.loader.load({ quiet: true });
        const r = res?.revoked ?? {};
        return infoDialog(this.ctx, `${text(v.name)} is suspended`, () => html`<p>What the suspension ended:</p>
          <dl class="facts compact">
            <dt>Operator sessions</dt><dd>${text(r.sessions ?? 0)}</dd>
            <dt>Operator tokens</dt><dd>${text(r.tokens ?? 0)}</dd>
            <dt>Grants in tenants</dt><dd>${text(r.grants ?? 0)}</dd>
            <dt>Devices</dt><dd>${text(r.devices ?? 0)}</dd>
          </dl>`);
      },
    });
  }

  private unsuspend(v: Vendor): void {
    openActionDialog(this.ctx, {
      title: `Reinstate ${text(v.name)}?`,
      intro: html`<p>The vendor becomes active again. Its devices must enrol again with new keys and its operators ask for access again.</p>`,
      submitLabel: 'Reinstate vendor',
      run: async () => {
        await this.ctx.api.post(`/provider/api/v1/vendors/${encodeURIComponent(v.id)}/lifecycle/unsuspend`);
        void this.loader.load({ quiet: true });
        return `${text(v.name)} is active again.`;
      },
    });
  }

  private create(): void {
    openActionDialog(this.ctx, {
      title: 'New vendor',
      fields: () => html`
        <div class="field"><label for="vendor-name">Name</label><input id="vendor-name" name="name" required maxlength="200" /></div>
        <div class="field"><label for="vendor-entity">Employing entity</label><input id="vendor-entity" name="employingEntity" required maxlength="200" /></div>
        <div class="field"><label for="vendor-country">Country</label>
          <input id="vendor-country" name="country" required maxlength="2" aria-describedby="vendor-country-hint" autocapitalize="characters" />
          <p id="vendor-country-hint" class="hint">Two letters (ISO 3166-1), e.g. CR.</p></div>`,
      submitLabel: 'Create vendor',
      run: async (data) => {
        const v = await this.ctx.api.post<Vendor>('/provider/api/v1/vendors', {
          name: str(data.get('name')).trim(),
          employingEntity: str(data.get('employingEntity')).trim(),
          country: str(data.get('country')).trim().toUpperCase(),
        });
        void this.loader.load({ quiet: true });
        return `Vendor ${text(v?.name)} was created.`;
      },
    });
  }

  render() {
    return html`
      <div class="toolbar"><button type="button" class="secondary" @click=${() => this.create()}>New vendor</button></div>
      ${show(this.loader, {
        what: 'vendors',
        isEmpty: (v) => v.length === 0,
        empty: 'No vendor is registered.',
        ok: (vendors) =>
          tableRegion(
            'Vendors',
            html`<table>
              <thead><tr>
                <th scope="col">Name</th><th scope="col">Employing entity</th><th scope="col">Country</th>
                <th scope="col">Status</th><th scope="col">Since</th><th scope="col"><span class="visually-hidden">Actions</span></th>
              </tr></thead>
              <tbody>
                ${vendors.map(
                  (v) => html`<tr data-testid=${`vendor-${v.id}`}>
                    <td>${text(v.name)}<div class="sub"><code>${v.id}</code></div></td>
                    <td>${text(v.employingEntity)}</td>
                    <td>${text(v.country)}</td>
                    <td>${badge(v.status)}</td>
                    <td class="nowrap">${fmtTime(v.statusChanged ?? v.created)}</td>
                    <td>${v.status === 'SUSPENDED'
                      ? html`<button type="button" class="secondary small" @click=${() => this.unsuspend(v)}>Reinstate</button>`
                      : html`<button type="button" class="danger small" @click=${() => this.suspend(v)}>Suspend</button>`}</td>
                  </tr>`,
                )}
              </tbody>
            </table>`,
          ),
      })}
    `;
  }
}

/** Vendors by id, for the other provider views (errors leave the map empty). */
export async function vendorMap(ctx: Ctx): Promise<Map<string, Vendor>> {
  try {
    const list = asArray<Vendor>(await ctx.api.get<Vendor[]>('/provider/api/v1/vendors'));
    return new Map(list.map((v) => [v.id, v]));
  } catch {
    return new Map();
  }
}
