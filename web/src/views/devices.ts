// Managed devices: posture (what each device reports, signed by its key) and compliance under
// the device policy now.
import { type TemplateResult, html, nothing } from 'lit-html';
import { type Ctx, Loader, type View, asArray, badge, fmtTime, openActionDialog, show, tableRegion, text, yesNo } from '../ui';
import { type Vendor, vendorMap } from './vendors';

interface Posture {
  os_name?: string;
  os_version?: string;
  disk_encrypted?: boolean;
  screen_lock?: boolean;
  edr_running?: boolean;
  last_patch?: string | null;
}

interface Device {
  id: string;
  vendorId?: string;
  name?: string;
  status?: string;
  enrolled?: string;
  posture?: Posture | null;
  postureReportedAt?: string | null;
  compliance?: { compliant?: boolean; failures?: string[] };
}

interface Data {
  devices: Device[];
  vendors: Map<string, Vendor>;
}

const FAILURES: Record<string, string> = {
  posture_missing: 'no posture reported',
  posture_stale: 'posture too old',
  disk_not_encrypted: 'disk not encrypted',
  screen_lock_off: 'screen lock off',
  edr_not_running: 'EDR not running',
  patch_too_old: 'patches too old',
};

function signal(label: string, value: boolean | undefined): TemplateResult {
  return html`<li>${label}: <span class=${value === true ? 'text-ok' : value === false ? 'text-bad' : ''}>${yesNo(value)}</span></li>`;
}

export class DevicesView implements View {
  readonly title = 'Devices';
  private readonly loader: Loader<Data>;

  constructor(private readonly ctx: Ctx) {
    this.loader = new Loader(ctx, async () => {
      const [devices, vendors] = await Promise.all([ctx.api.get<Device[]>('/provider/api/v1/devices'), vendorMap(ctx)]);
      return { devices: asArray<Device>(devices), vendors };
    });
    void this.loader.load();
  }

  busy() {
    return this.loader.busy;
  }

  private lifecycle(d: Device, action: 'lock' | 'unlock' | 'revoke'): void {
    const words = {
      lock: ['Lock', 'The device gets no token and its requests are refused until it is unlocked.'],
      unlock: ['Unlock', 'The device can be used again.'],
      revoke: ['Revoke', 'Final: every operator token bound to it is revoked and its key can never enrol again.'],
    }[action];
    openActionDialog(this.ctx, {
      title: `${words[0]} ${text(d.name)}?`,
      intro: html`<p>${words[1]}</p>`,
      submitLabel: `${words[0]} device`,
      danger: action !== 'unlock',
      run: async () => {
        await this.ctx.api.post(`/provider/api/v1/devices/${encodeURIComponent(d.id)}/lifecycle/${action}`);
        void this.loader.load({ quiet: true });
        return `${text(d.name)}: ${action} done.`;
      },
    });
  }

  render() {
    return show(this.loader, {
      what: 'devices',
      isEmpty: (d) => d.devices.length === 0,
      empty: 'No device is enrolled.',
      ok: (data) =>
        tableRegion(
          'Managed devices',
          html`<table>
            <thead><tr>
              <th scope="col">Device</th><th scope="col">Vendor</th><th scope="col">Status</th>
              <th scope="col">Posture</th><th scope="col">Compliance</th><th scope="col"><span class="visually-hidden">Actions</span></th>
            </tr></thead>
            <tbody>
              ${data.devices.map((d) => {
                const p = d.posture;
                const c = d.compliance;
                return html`<tr data-testid=${`device-${d.id}`}>
                  <td>${text(d.name)}<div class="sub"><code>${d.id}</code></div><div class="sub">enrolled ${fmtTime(d.enrolled)}</div></td>
                  <td>${text((d.vendorId && data.vendors.get(d.vendorId)?.name) || d.vendorId)}</td>
                  <td>${badge(d.status)}</td>
                  <td>${p
                    ? html`<div>${text(p.os_name)} ${text(p.os_version)}</div>
                        <ul class="signals">
                          ${signal('Disk encrypted', p.disk_encrypted)} ${signal('Screen lock', p.screen_lock)}
                          ${signal('EDR running', p.edr_running)}
                          <li>Last patch: ${text(p.last_patch)}</li>
                        </ul>
                        <div class="sub">reported ${fmtTime(d.postureReportedAt)}</div>`
                    : html`<span class="sub">No posture reported yet.</span>`}</td>
                  <td>${c?.compliant === true
                    ? html`<span class="badge badge-ok">Compliant</span>`
                    : c?.compliant === false
                      ? html`<span class="badge badge-bad">Not compliant</span>
                          <ul class="signals">${asArray<string>(c.failures).map((f) => html`<li>${FAILURES[f] ?? f}</li>`)}</ul>`
                      : '—'}</td>
                  <td class="nowrap">
                    ${d.status === 'ACTIVE'
                      ? html`<button type="button" class="secondary small" @click=${() => this.lifecycle(d, 'lock')}>Lock</button>`
                      : nothing}
                    ${d.status === 'LOCKED'
                      ? html`<button type="button" class="secondary small" @click=${() => this.lifecycle(d, 'unlock')}>Unlock</button>`
                      : nothing}
                    ${d.status !== 'REVOKED'
                      ? html`<button type="button" class="danger small" @click=${() => this.lifecycle(d, 'revoke')}>Revoke</button>`
                      : nothing}
                  </td>
                </tr>`;
              })}
            </tbody>
          </table>`,
        ),
    });
  }
}
