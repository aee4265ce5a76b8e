// Groups and their members.
import { html, nothing } from 'lit-html';
import { query } from '../api';
import { type Ctx, Loader, type View, asArray, badge, openActionDialog, show, str, tableRegion, text } from '../ui';
import { type User, userName } from './users';

interface Group {
  id: string;
  created?: string;
  lastMembershipUpdated?: string;
  profile: { name?: string; description?: string };
}

export class GroupsView implements View {
  readonly title = 'Groups';
  private q = '';
  private readonly loader: Loader<Group[]>;

  constructor(private readonly ctx: Ctx) {
    this.loader = new Loader(ctx, async () =>
      asArray<Group>(await ctx.api.get<Group[]>(`${ctx.prefix}/api/v1/groups${query({ q: this.q, limit: 500 })}`)),
    );
    void this.loader.load();
  }

  busy() {
    return this.loader.busy;
  }

  private create(): void {
    openActionDialog(this.ctx, {
      title: 'New group',
      submitLabel: 'Create group',
      fields: () => html`
        <div class="field"><label for="group-name">Name</label><input id="group-name" name="name" required maxlength="255" /></div>
        <div class="field"><label for="group-description">Description</label><input id="group-description" name="description" maxlength="1024" /></div>`,
      run: async (data) => {
        const name = str(data.get('name')).trim();
        if (!name) throw new Error('Give the group a name.');
        const g = await this.ctx.api.post<Group>(`${this.ctx.prefix}/api/v1/groups`, {
          profile: { name, description: str(data.get('description')) },
        });
        void this.loader.load({ quiet: true });
        return `Group ${g.profile?.name ?? name} was created.`;
      },
    });
  }

  render() {
    return html`
      <div class="toolbar">
        <form role="search" class="toolbar-group" @submit=${(e: SubmitEvent) => {
          e.preventDefault();
          this.q = str(new FormData(e.target as HTMLFormElement).get('q')).trim();
          void this.loader.load();
        }}>
          <div class="field inline">
            <label for="groups-q">Search groups</label>
            <input id="groups-q" name="q" type="search" .value=${this.q} placeholder="Start of the name" />
          </div>
          <button type="submit">Search</button>
        </form>
        <button type="button" class="secondary" @click=${() => this.create()}>New group</button>
      </div>
      ${show(this.loader, {
        what: 'groups',
        isEmpty: (g) => g.length === 0,
        empty: this.q ? `No group's name starts with “${this.q}”.` : 'This organisation has no groups yet.',
        ok: (groups) =>
          tableRegion(
            'Groups',
            html`<table>
              <thead><tr><th scope="col">Name</th><th scope="col">Description</th></tr></thead>
              <tbody>
                ${groups.map(
                  (g) => html`<tr data-testid=${`group-${g.id}`}>
                    <td><a href=${`#/groups/${encodeURIComponent(g.id)}`}>${text(g.profile?.name)}</a></td>
                    <td>${text(g.profile?.description)}</td>
                  </tr>`,
                )}
              </tbody>
            </table>`,
          ),
      })}
    `;
  }
}

export class GroupDetailView implements View {
  private readonly group: Loader<Group>;
  private readonly members: Loader<User[]>;
  private readonly base: string;

  constructor(
    private readonly ctx: Ctx,
    id: string,
  ) {
    this.base = `${ctx.prefix}/api/v1/groups/${encodeURIComponent(id)}`;
    this.group = new Loader(ctx, () => ctx.api.get<Group>(this.base));
    this.members = new Loader(ctx, async () => {
      let res = await ctx.api.call<User[]>(`${this.base}/users?limit=1000`);
      const all = asArray<User>(res.data);
      // A group rarely has more than a page; follow a few next links at most.
      for (let i = 0; i < 10 && res.next; i++) {
        res = await ctx.api.call<User[]>(res.next);
        all.push(...asArray<User>(res.data));
      }
      return all;
    });
    void this.group.load();
    void this.members.load();
  }

  get title() {
    return this.group.data?.profile?.name ?? 'Group';
  }

  busy() {
    return this.group.busy || this.members.busy;
  }

  private add(): void {
    openActionDialog(this.ctx, {
      title: `Add a member to ${this.title}`,
      submitLabel: 'Add member',
      fields: () => html`<div class="field">
        <label for="member-login">Login or user id</label>
        <input id="member-login" name="user" required autocapitalize="none" spellcheck="false" />
      </div>`,
      run: async (data) => {
        const who = str(data.get('user')).trim();
        if (!who) throw new Error('Enter a login or a user id.');
        const user = await this.ctx.api.get<User>(`${this.ctx.prefix}/api/v1/users/${encodeURIComponent(who)}`);
        await this.ctx.api.put(`${this.base}/users/${encodeURIComponent(user.id)}`);
        void this.members.load({ quiet: true });
        return `${userName(user)} is now a member.`;
      },
    });
  }

  private remove(u: User): void {
    openActionDialog(this.ctx, {
      title: `Remove ${userName(u)}`,
      intro: html`<p>${userName(u)} will no longer be a member of ${this.title}.</p>`,
      submitLabel: 'Remove member',
      danger: true,
      run: async () => {
        await this.ctx.api.del(`${this.base}/users/${encodeURIComponent(u.id)}`);
        void this.members.load({ quiet: true });
        return `${userName(u)} was removed.`;
      },
    });
  }

  render() {
    return html`
      <p><a href="#/groups">← All groups</a></p>
      ${show(this.group, {
        what: 'the group',
        ok: (g) => html`<p>${g.profile?.description || 'No description.'}</p>`,
      })}
      <section>
        <div class="section-head">
          <h2 id="members-h">Members</h2>
          ${this.group.state === 'ok'
            ? html`<button type="button" class="secondary" @click=${() => this.add()}>Add member</button>`
            : nothing}
        </div>
        ${show(this.members, {
          what: 'members',
          isEmpty: (m) => m.length === 0,
          empty: 'This group has no members.',
          ok: (members) =>
            tableRegion(
              'Members',
              html`<table>
                <thead><tr><th scope="col">Name</th><th scope="col">Login</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
                <tbody>
                  ${members.map(
                    (u) => html`<tr>
                      <td><a href=${`#/users/${encodeURIComponent(u.id)}`}>${userName(u)}</a></td>
                      <td>${text(u.profile?.login)}</td>
                      <td>${badge(u.status)}</td>
                      <td><button type="button" class="secondary small" @click=${() => this.remove(u)}>Remove</button></td>
                    </tr>`,
                  )}
                </tbody>
              </table>`,
            ),
        })}
      </section>
    `;
  }
}
