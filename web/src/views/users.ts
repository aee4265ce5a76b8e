// Users: search, detail, lifecycle actions, factors (management API, docs/openapi.yaml).
import { html, nothing } from 'lit-html';
import { query } from '../api';
import {
  type Ctx,
  Loader,
  type View,
  asArray,
  badge,
  fmtTime,
  infoDialog,
  openActionDialog,
  show,
  str,
  tableRegion,
  text,
} from '../ui';

export interface User {
  id: string;
  status: string;
  created?: string;
  activated?: string | null;
  statusChanged?: string;
  lastLogin?: string | null;
  lastUpdated?: string;
  passwordChanged?: string | null;
  profile: Record<string, unknown>;
  credentials?: { password?: unknown };
}

export function userName(u: User | undefined): string {
  if (!u) return '—';
  const p = u.profile ?? {};
  const name = [str(p.firstName), str(p.lastName)].filter(Boolean).join(' ');
  return name || str(p.login) || u.id;
}

export class UsersView implements View {
  readonly title = 'Users';
  private q = '';
  private users: User[] = [];
  private next: string | null = null;
  private readonly loader: Loader<User[]>;
  private loadingMore = false;

  constructor(private readonly ctx: Ctx) {
    this.loader = new Loader(ctx, async () => {
      const res = await ctx.api.call<User[]>(`${ctx.prefix}/api/v1/users${query({ q: this.q, limit: 50 })}`);
      this.users = asArray<User>(res.data);
      this.next = res.next;
      return this.users;
    });
    void this.loader.load();
  }

  busy() {
    return this.loader.busy || this.loadingMore;
  }

  private async more(): Promise<void> {
    if (!this.next) return;
    this.loadingMore = true;
    this.ctx.update();
    try {
      const res = await this.ctx.api.call<User[]>(this.next);
      this.users = [...this.users, ...asArray<User>(res.data)];
      this.next = res.next;
    } catch (e) {
      this.ctx.flash(`Could not load more users: ${e instanceof Error ? e.message : String(e)}`, 'error');
    } finally {
      this.loadingMore = false;
      this.ctx.update();
    }
  }

  render() {
    return html`
      <form class="toolbar" role="search" @submit=${(e: SubmitEvent) => {
        e.preventDefault();
        this.q = String(new FormData(e.target as HTMLFormElement).get('q') ?? '').trim();
        void this.loader.load();
      }}>
        <div class="field inline">
          <label for="users-q">Search users</label>
          <input id="users-q" name="q" type="search" .value=${this.q} placeholder="Start of login, e-mail or name" />
        </div>
        <button type="submit">Search</button>
      </form>
      ${show(this.loader, {
        what: 'users',
        isEmpty: () => this.users.length === 0,
        empty: this.q ? `No user's login, e-mail or name starts with “${this.q}”.` : 'This organisation has no users yet.',
        ok: () => html`${tableRegion(
          'Users',
          html`<table>
            <caption class="visually-hidden">Users${this.q ? ` matching ${this.q}` : ''}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Login</th>
                <th scope="col">Status</th>
                <th scope="col">Last sign-in</th>
              </tr>
            </thead>
            <tbody>
              ${this.users.map(
                (u) => html`<tr data-testid=${`user-${u.id}`}>
                  <td><a href=${`#/users/${encodeURIComponent(u.id)}`}>${userName(u)}</a></td>
                  <td>${text(u.profile?.login)}</td>
                  <td>${badge(u.status)}</td>
                  <td>${fmtTime(u.lastLogin)}</td>
                </tr>`,
              )}
            </tbody>
          </table>`,
        )}
        ${this.next
          ? html`<p><button type="button" class="secondary" ?disabled=${this.loadingMore} @click=${() => void this.more()}>
              ${this.loadingMore ? 'Loading…' : 'Load more users'}
            </button></p>`
          : nothing}`,
      })}
    `;
  }
}

interface Factor {
  id: string;
  factorType: string;
  provider?: string;
  status: string;
  created?: string;
}

interface Action {
  path: string;
  label: string;
  statuses: string[] | 'any';
  confirm: string;
  danger?: boolean;
  method?: 'POST' | 'DELETE';
}

const ACTIONS: Action[] = [
  { path: 'lifecycle/activate', label: 'Activate', statuses: ['STAGED', 'PROVISIONED', 'DEPROVISIONED'], confirm: 'The user becomes active (or gets an activation link when it has no password).' },
  { path: 'lifecycle/unlock', label: 'Unlock', statuses: ['LOCKED_OUT'], confirm: 'The user can sign in again and the failed sign-in count is reset.' },
  { path: 'lifecycle/unsuspend', label: 'Unsuspend', statuses: ['SUSPENDED'], confirm: 'The user becomes active again.' },
  { path: 'lifecycle/reset_password', label: 'Reset password', statuses: ['ACTIVE', 'RECOVERY', 'LOCKED_OUT'], confirm: 'Every session of the user ends and a one-time reset link is made. The user cannot sign in with the old password.', danger: true },
  { path: 'lifecycle/reset_factors', label: 'Reset factors', statuses: 'any', confirm: 'Every second factor of the user is removed; the user must enrol again.', danger: true },
  { path: 'sessions', label: 'End sessions', statuses: 'any', confirm: 'Every session of the user ends now.', method: 'DELETE' },
  { path: 'lifecycle/suspend', label: 'Suspend', statuses: ['ACTIVE'], confirm: 'The user cannot sign in until unsuspended; every session ends.', danger: true },
  { path: 'lifecycle/deactivate', label: 'Deactivate', statuses: ['STAGED', 'PROVISIONED', 'ACTIVE', 'RECOVERY', 'LOCKED_OUT', 'SUSPENDED'], confirm: 'The user is deprovisioned and every session ends.', danger: true },
  { path: '', label: 'Delete', statuses: ['DEPROVISIONED'], confirm: 'The user, with memberships, factors and sessions, is deleted for good.', danger: true, method: 'DELETE' },
];

export class UserDetailView implements View {
  private readonly user: Loader<User>;
  private readonly factors: Loader<Factor[]>;

  constructor(
    private readonly ctx: Ctx,
    id: string,
  ) {
    const base = `${ctx.prefix}/api/v1/users/${encodeURIComponent(id)}`;
    this.user = new Loader(ctx, () => ctx.api.get<User>(base));
    this.factors = new Loader(ctx, async () => asArray<Factor>(await ctx.api.get<Factor[]>(`${base}/factors`)));
    void this.user.load();
    void this.factors.load();
  }

  get title() {
    return this.user.data ? userName(this.user.data) : 'User';
  }

  busy() {
    return this.user.busy || this.factors.busy;
  }

  private act(u: User, a: Action): void {
    const base = `${this.ctx.prefix}/api/v1/users/${encodeURIComponent(u.id)}`;
    openActionDialog(this.ctx, {
      title: `${a.label}: ${userName(u)}`,
      intro: html`<p>${a.confirm}</p>`,
      submitLabel: a.label,
      danger: a.danger,
      run: async () => {
        const path = a.path ? `${base}/${a.path}` : base;
        const res = await this.ctx.api.call<Record<string, unknown>>(path, { method: a.method ?? 'POST' });
        if (a.label === 'Delete') {
          this.ctx.navigate('#/users');
          return `${userName(u)} was deleted.`;
        }
        void this.user.load({ quiet: true });
        void this.factors.load({ quiet: true });
        const data = res.data ?? {};
        const link = str(data.resetPasswordUrl) || str(data.activationUrl);
        if (link) {
          return infoDialog(this.ctx, a.label === 'Activate' ? 'Activation link' : 'Password reset link', () => html`
            <p>Give this one-time link to ${userName(u)} over a channel you trust. It is shown only now.</p>
            <p class="secret"><code>${link}</code></p>`);
        }
        return `${a.label}: done for ${userName(u)}.`;
      },
    });
  }

  render() {
    return html`
      <p><a href="#/users">← All users</a></p>
      ${show(this.user, {
        what: 'the user',
        ok: (u) => {
          const p = u.profile ?? {};
          const actions = ACTIONS.filter((a) => a.statuses === 'any' || a.statuses.includes(u.status));
          return html`
            <section>
              <h2 id="user-profile-h">Profile</h2>
              <dl class="facts">
                <dt>Status</dt><dd>${badge(u.status)}</dd>
                <dt>Login</dt><dd>${text(p.login)}</dd>
                <dt>E-mail</dt><dd>${text(p.email)}</dd>
                <dt>First name</dt><dd>${text(p.firstName)}</dd>
                <dt>Last name</dt><dd>${text(p.lastName)}</dd>
                <dt>Mobile phone</dt><dd>${text(p.mobilePhone)}</dd>
                <dt>User id</dt><dd><code>${u.id}</code></dd>
                <dt>Created</dt><dd>${fmtTime(u.created)}</dd>
                <dt>Activated</dt><dd>${fmtTime(u.activated)}</dd>
                <dt>Last sign-in</dt><dd>${fmtTime(u.lastLogin)}</dd>
                <dt>Password changed</dt><dd>${u.credentials?.password ? fmtTime(u.passwordChanged) : 'no password'}</dd>
              </dl>
            </section>
            <section>
              <h2 id="user-actions-h">Actions</h2>
              <div class="button-row">
                ${actions.map(
                  (a) => html`<button type="button" class=${a.danger ? 'danger' : 'secondary'} @click=${() => this.act(u, a)}>
                    ${a.label}
                  </button>`,
                )}
              </div>
            </section>
            <section>
              <h2 id="user-factors-h">Factors</h2>
              ${show(this.factors, {
                what: 'factors',
                isEmpty: (f) => f.length === 0,
                empty: 'No second factor is enrolled.',
                ok: (factors) =>
                  tableRegion(
                    'Factors',
                    html`<table>
                      <thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Enrolled</th></tr></thead>
                      <tbody>
                        ${factors.map(
                          (f) => html`<tr><td>${f.factorType === 'token:software:totp' ? 'Authenticator app (TOTP)' : f.factorType}</td>
                            <td>${badge(f.status)}</td><td>${fmtTime(f.created)}</td></tr>`,
                        )}
                      </tbody>
                    </table>`,
                  ),
              })}
            </section>
            <p><a href=${`#/log?actor=${encodeURIComponent(u.id)}`}>Events by this user in the System Log</a></p>
          `;
        },
      })}
    `;
  }
}
