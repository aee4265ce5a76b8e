// Operators: provider users who work for a vendor.
import { html } from 'lit-html';
import { type Ctx, Loader, type View, asArray, badge, fmtTime, openActionDialog, show, str, tableRegion, text } from '../ui';
import { type User, userName } from './users';
import { type Vendor, vendorMap } from './vendors';

interface Operator {
  id: string;
  vendorId?: string;
  status?: string;
  created?: string;
  statusChanged?: string;
}

interface Data {
  operators: Operator[];
  vendors: Map<string, Vendor>;
  users: Map<string, User>;
}

export class OperatorsView implements View {
  readonly title = 'Operators';
  private readonly loader: Loader<Data>;

  constructor(private readonly ctx: Ctx) {
    this.loader = new Loader(ctx, async () => {
      const [operators, vendors, users] = await Promise.all([
        ctx.api.get<Operator[]>('/provider/api/v1/operators'),
        vendorMap(ctx),
        ctx.api.get<User[]>(`${ctx.prefix}/api/v1/users?limit=200`).catch(() => [] as User[]),
      ]);
      return {
        operators: asArray<Operator>(operators),
        vendors,
        users: new Map(asArray<User>(users).map((u) => [u.id, u])),
      };
    });
    void this.loader.load();
  }

  busy() {
    return this.loader.busy;
  }

  private toggle(o: Operator, name: string): void {
    const suspend = o.status !== 'SUSPENDED';
    openActionDialog(this.ctx, {
      title: suspend ? `Suspend ${name}?` : `Reinstate ${name}?`,
      intro: suspend
        ? html`<p>The operator's provider sessions end and their tokens are revoked; their grants cannot be used while suspended.</p>`
        : html`<p>The operator must sign in again and get a new token.</p>`,
      submitLabel: suspend ? 'Suspend operator' : 'Reinstate operator',
      danger: suspend,
      run: async () => {
        await this.ctx.api.post(`/provider/api/v1/operators/${encodeURIComponent(o.id)}/lifecycle/${suspend ? 'suspend' : 'unsuspend'}`);
        void this.loader.load({ quiet: true });
        return suspend ? `${name} is suspended.` : `${name} is active again.`;
      },
    });
  }

  render() {
    return show(this.loader, {
      what: 'operators',
      isEmpty: (d) => d.operators.length === 0,
      empty: 'No operator is registered.',
      ok: (d) =>
        tableRegion(
          'Operators',
          html`<table>
            <thead><tr>
              <th scope="col">Operator</th><th scope="col">Vendor</th><th scope="col">Status</th>
              <th scope="col">Since</th><th scope="col"><span class="visually-hidden">Actions</span></th>
            </tr></thead>
            <tbody>
              ${d.operators.map((o) => {
                const u = d.users.get(o.id);
                const v = o.vendorId ? d.vendors.get(o.vendorId) : undefined;
                const name = u ? userName(u) : o.id;
                return html`<tr data-testid=${`operator-${o.id}`}>
                  <td>${name}<div class="sub">${u ? text(u.profile?.login) : html`<code>${o.id}</code>`}</div></td>
                  <td>${text(v?.name ?? o.vendorId)} ${v?.status === 'SUSPENDED' ? badge('SUSPENDED') : ''}</td>
                  <td>${badge(o.status)}</td>
                  <td class="nowrap">${fmtTime(o.statusChanged ?? o.created)}</td>
                  <td><button type="button" class=${o.status === 'SUSPENDED' ? 'secondary small' : 'danger small'}
                    @click=${() => this.toggle(o, str(name))}>${o.status === 'SUSPENDED' ? 'Reinstate' : 'Suspend'}</button></td>
                </tr>`;
              })}
            </tbody>
          </table>`,
        ),
    });
  }
}
