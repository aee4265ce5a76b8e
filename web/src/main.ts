// The console application: sign-in, the shell (header, navigation, main region), hash routing,
// dialogs and focus management. Views live in ./views.
import './styles.css';
import { type TemplateResult, html, nothing, render } from 'lit-html';
import { Activity, DEFAULT_IDLE_MS, idleWindowMs } from './activity';
import { Api, type ApiError, tenantPrefix } from './api';
import { type Session, clearSession, parseConsoleInfo, storeSession, storedSession } from './session';
import type { Ctx, DialogSpec, View } from './ui';
import { SignInView } from './views/signin';
import { UsersView, UserDetailView } from './views/users';
import { GroupsView, GroupDetailView } from './views/groups';
import { LogView } from './views/log';
import { SupportView } from './views/support';
import { VendorsView } from './views/vendors';
import { OperatorsView } from './views/operators';
import { DevicesView } from './views/devices';
import { AlertsView } from './views/alerts';
import { IncidentsView, IncidentDetailView } from './views/incidents';
import { NotFoundView } from './views/notfound';

interface NavItem {
  hash: string;
  label: string;
}

const TENANT_NAV: NavItem[] = [
  { hash: '#/users', label: 'Users' },
  { hash: '#/groups', label: 'Groups' },
  { hash: '#/log', label: 'System Log' },
  { hash: '#/support', label: 'Support access' },
];

const PROVIDER_NAV: NavItem[] = [
  { hash: '#/users', label: 'Users' },
  { hash: '#/groups', label: 'Groups' },
  { hash: '#/log', label: 'System Log' },
  { hash: '#/vendors', label: 'Vendors' },
  { hash: '#/operators', label: 'Operators' },
  { hash: '#/devices', label: 'Devices' },
  { hash: '#/alerts', label: 'Alerts' },
  { hash: '#/incidents', label: 'Incidents' },
];

interface RouteDef {
  pattern: RegExp;
  make: (ctx: Ctx, params: string[]) => View;
  /** provider: only for the provider's security team; tenant: only for other tenants. */
  only?: 'provider' | 'tenant';
}

const ROUTES: RouteDef[] = [
  { pattern: /^\/users$/, make: (c) => new UsersView(c) },
  { pattern: /^\/users\/([^/]+)$/, make: (c, p) => new UserDetailView(c, p[0]) },
  { pattern: /^\/groups$/, make: (c) => new GroupsView(c) },
  { pattern: /^\/groups\/([^/]+)$/, make: (c, p) => new GroupDetailView(c, p[0]) },
  { pattern: /^\/log$/, make: (c) => new LogView(c) },
  { pattern: /^\/support$/, make: (c) => new SupportView(c), only: 'tenant' },
  { pattern: /^\/vendors$/, make: (c) => new VendorsView(c), only: 'provider' },
  { pattern: /^\/operators$/, make: (c) => new OperatorsView(c), only: 'provider' },
  { pattern: /^\/devices$/, make: (c) => new DevicesView(c), only: 'provider' },
  { pattern: /^\/alerts$/, make: (c) => new AlertsView(c), only: 'provider' },
  { pattern: /^\/incidents$/, make: (c) => new IncidentsView(c), only: 'provider' },
  { pattern: /^\/incidents\/([^/]+)$/, make: (c, p) => new IncidentDetailView(c, p[0]), only: 'provider' },
];

function currentPath(): string {
  const h = location.hash.replace(/^#/, '').split('?')[0];
  return h === '' ? '/' : h;
}

class App {
  private session: Session | null = null;
  /** The stored token while the app checks it at start. */
  private resuming: string | null = null;
  private view: View | null = null;
  private signIn: SignInView | null = null;
  private dialog: DialogSpec | null = null;
  private dialogOpener: Element | null = null;
  private dialogGeneration = 0;
  private dialogShown = -1;
  private flashMessage: { text: string; kind: 'ok' | 'error' } | null = null;
  private focusHeading = false;
  private starting = true;
  private renderQueued = false;
  private readonly root: HTMLElement;
  readonly api: Api;
  private readonly activity: Activity;

  constructor(root: HTMLElement) {
    this.root = root;
    this.api = new Api(
      () => this.session?.token ?? this.resuming,
      (e) => this.sessionEnded(e),
    );
    this.activity = new Activity(DEFAULT_IDLE_MS, () => this.update());
  }

  async start(): Promise<void> {
    window.addEventListener('hashchange', () => this.route());
    // Only the admin's own input counts: polls stop after the idle window without it.
    const input = () => this.activity.input();
    window.addEventListener('keydown', input, { capture: true, passive: true });
    window.addEventListener('pointerdown', input, { capture: true, passive: true });
    const stored = storedSession();
    if (stored) {
      this.resuming = stored.token;
      try {
        const data = await this.api.get<unknown>(`${tenantPrefix(stored.tenant)}/api/v1/console/session`);
        this.session = { ...stored, info: parseConsoleInfo(data) };
        this.activity.restart(idleWindowMs(this.session.info.expiresAt, Date.now()));
      } catch (e) {
        clearSession();
        this.session = null;
        this.signInMessage((e as ApiError).status === 403 ? 'This account may not use the console.' : '');
      }
    }
    this.resuming = null;
    this.starting = false;
    this.route();
  }

  private signInMessage(message: string): void {
    this.signIn = new SignInView(this.api, (token, tenant, info) => this.signedIn(token, tenant, info), () =>
      this.update(),
    );
    if (message) this.signIn.message = message;
  }

  private sessionEnded(e: ApiError): void {
    if (!this.session) return;
    this.session = null;
    clearSession();
    this.disposeView();
    this.dialog = null;
    this.signInMessage(`Your session has ended (${e.summary}). Sign in again.`);
    this.focusHeading = true;
    this.update();
  }

  private signedIn(token: string, tenant: string, info: ReturnType<typeof parseConsoleInfo>): void {
    storeSession(token, tenant);
    this.session = { token, tenant, info };
    this.activity.restart(idleWindowMs(info.expiresAt, Date.now()));
    this.signIn = null;
    const path = currentPath();
    if (path === '/' || path === '/signin') {
      location.hash = info.provider ? '#/incidents' : '#/users';
    }
    this.route();
  }

  async signOut(): Promise<void> {
    const s = this.session;
    if (s) {
      try {
        await this.api.del(`${tenantPrefix(s.tenant)}/api/v1/console/session`);
      } catch (e) {
        // No longer a console admin (403): end the sign-in session itself. Either way the
        // session is forgotten here whatever the server says.
        if ((e as ApiError).status === 403) {
          await this.api.del(`${tenantPrefix(s.tenant)}/api/v1/sessions/me`).catch(() => undefined);
        }
      }
    }
    this.session = null;
    clearSession();
    this.disposeView();
    this.signInMessage('You have signed out.');
    this.focusHeading = true;
    this.update();
  }

  private disposeView(): void {
    this.view?.dispose?.();
    this.view = null;
  }

  private ctx(): Ctx {
    const session = this.session!;
    return {
      api: this.api,
      session,
      prefix: tenantPrefix(session.tenant),
      update: () => this.update(),
      navigate: (hash) => {
        location.hash = hash;
      },
      openDialog: (spec) => this.openDialog(spec),
      closeDialog: () => this.closeDialog(),
      flash: (text, kind = 'ok') => {
        this.flashMessage = { text, kind };
        this.update();
      },
      activity: this.activity,
    };
  }

  private route(): void {
    this.disposeView();
    this.closeDialog(false);
    this.flashMessage = null;
    this.focusHeading = true;
    if (!this.session) {
      if (!this.signIn) this.signInMessage('');
      this.update();
      return;
    }
    let path = currentPath();
    if (path === '/' || path === '/signin') {
      path = this.session.info.provider ? '/incidents' : '/users';
      history.replaceState(null, '', `#${path}`);
    }
    const provider = this.session.info.provider;
    for (const r of ROUTES) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      if ((r.only === 'provider' && !provider) || (r.only === 'tenant' && provider)) break;
      this.view = r.make(
        this.ctx(),
        m.slice(1).map((p) => decodeURIComponent(p)),
      );
      this.update();
      return;
    }
    this.view = new NotFoundView(path);
    this.update();
  }

  openDialog(spec: DialogSpec): void {
    if (!this.dialog) this.dialogOpener = document.activeElement;
    this.dialog = spec;
    this.dialogGeneration++;
    this.update();
  }

  closeDialog(restoreFocus = true): void {
    if (!this.dialog) return;
    const spec = this.dialog;
    this.dialog = null;
    const el = this.root.querySelector('dialog');
    if (el?.open) el.close();
    spec.onClose?.();
    this.update();
    if (restoreFocus && this.dialogOpener instanceof HTMLElement && this.dialogOpener.isConnected) {
      this.dialogOpener.focus();
    }
    this.dialogOpener = null;
  }

  update(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.paint();
    });
  }

  private paint(): void {
    render(this.template(), this.root);
    const dialog = this.root.querySelector('dialog');
    if (dialog && this.dialog && !dialog.open) {
      dialog.showModal();
      this.dialogShown = this.dialogGeneration;
    } else if (dialog && this.dialog && this.dialogShown !== this.dialogGeneration) {
      // Another dialog's content in the open dialog: start its keyboard focus afresh.
      this.dialogShown = this.dialogGeneration;
      dialog.querySelector<HTMLElement>('[autofocus], input, select, textarea, button')?.focus();
    }
    if (this.focusHeading && !this.dialog) {
      const h1 = this.root.querySelector<HTMLElement>('main h1');
      if (h1) {
        this.focusHeading = false;
        h1.focus();
      }
    }
    const title = this.session ? (this.view?.title ?? '') : 'Sign in';
    document.title = title ? `${title} · Custos console` : 'Custos console';
  }

  private template(): TemplateResult {
    if (this.starting) {
      return html`<main id="main" aria-busy="true" tabindex="-1"><p class="loading">Loading the console…</p></main>`;
    }
    if (!this.session) {
      return html`
        <header class="banner"><span class="brand">Custos console</span></header>
        <main id="main" class="signin-main" tabindex="-1" aria-busy=${this.signIn?.busy ? 'true' : 'false'}>
          ${this.signIn?.render() ?? nothing}
        </main>
      `;
    }
    const info = this.session.info;
    const nav = info.provider ? PROVIDER_NAV : TENANT_NAV;
    const path = currentPath();
    const view = this.view;
    return html`
      <button type="button" class="skip-link" @click=${() => this.root.querySelector<HTMLElement>('main h1')?.focus()}>
        Skip to content
      </button>
      <header class="banner">
        <span class="brand">Custos console</span>
        <span class="who">
          <span class="tenant">${info.tenant.displayName || info.tenant.name}${info.provider ? ' · security team' : ''}</span>
          <span class="user">${info.user.displayName || info.user.login}</span>
        </span>
        <button type="button" class="secondary signout" @click=${() => void this.signOut()}>Sign out</button>
      </header>
      <nav aria-label="Console">
        <ul>
          ${nav.map((item) => {
            const current = path === item.hash.slice(1) || path.startsWith(item.hash.slice(1) + '/');
            return html`<li><a href=${item.hash} aria-current=${current ? 'page' : nothing}>${item.label}</a></li>`;
          })}
        </ul>
      </nav>
      <main id="main" tabindex="-1" aria-busy=${view?.busy() ? 'true' : 'false'}>
        ${view
          ? html`<h1 tabindex="-1">${view.title}</h1>
              <div class="flash-area" role="status">
                ${this.flashMessage
                  ? html`<p class="flash flash-${this.flashMessage.kind}">${this.flashMessage.text}</p>`
                  : nothing}
                ${this.activity.idle
                  ? html`<p class="flash flash-idle" data-testid="idle-notice">
                      No input for ${this.activity.idleMinutes} minutes: automatic refreshing has stopped. Press a key
                      or click to resume it.
                    </p>`
                  : nothing}
              </div>
              ${view.render()}`
          : nothing}
      </main>
      ${this.dialog ? this.dialogTemplate(this.dialog) : nothing}
    `;
  }

  private dialogTemplate(spec: DialogSpec): TemplateResult {
    return html`<dialog
      class=${spec.wide ? 'dialog wide' : 'dialog'}
      aria-labelledby="dialog-title"
      @close=${() => this.closeDialog()}
    >
      ${spec.wide
        ? html`<div class="dialog-head">
            <h2 id="dialog-title">${spec.title}</h2>
            <button type="button" class="secondary small" @click=${() => this.closeDialog()}>Close</button>
          </div>`
        : html`<h2 id="dialog-title">${spec.title}</h2>`}
      ${spec.body()}
    </dialog>`;
  }
}

const root = document.getElementById('app');
if (root) {
  const app = new App(root);
  void app.start();
}
