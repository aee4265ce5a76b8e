// Sign-in with the tenant's own sign-in API: password, then a TOTP code, then the console
// session check (docs/sign-in.md; the console contract).
import { html } from 'lit-html';
import { type Api, ApiError, errorText, tenantPrefix } from '../api';
import { type ConsoleInfo, parseConsoleInfo } from '../session';

interface AuthnFactor {
  id: string;
  factorType: string;
}

interface AuthnTransaction {
  status: string;
  sessionToken?: string;
  stateToken?: string;
  _embedded?: { factors?: AuthnFactor[] };
}

export class SignInView {
  step: 'password' | 'code' = 'password';
  busy = false;
  error = '';
  message = '';
  private tenant = '';
  private username = '';
  private stateToken = '';
  private factorId = '';
  private focusCode = false;

  constructor(
    private readonly api: Api,
    private readonly onSuccess: (token: string, tenant: string, info: ConsoleInfo) => void,
    private readonly update: () => void,
  ) {}

  private async submitPassword(e: SubmitEvent): Promise<void> {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const data = new FormData(form);
    const tenant = String(data.get('tenant') ?? '').trim();
    const username = String(data.get('username') ?? '').trim();
    const password = String(data.get('password') ?? '');
    if (!tenant || !username || !password) {
      this.error = 'Enter the organisation, your username and your password.';
      this.update();
      return;
    }
    this.tenant = tenant;
    this.username = username;
    this.busy = true;
    this.error = '';
    this.message = '';
    this.update();
    try {
      const res = await this.api.call<AuthnTransaction>(`${tenantPrefix(tenant)}/api/v1/authn`, {
        method: 'POST',
        body: { username, password },
        auth: false,
      });
      const tx = res.data;
      if (tx.status === 'MFA_REQUIRED') {
        const factor = (tx._embedded?.factors ?? []).find((f) => f.factorType === 'token:software:totp');
        if (!factor || !tx.stateToken) {
          this.error = 'This account has no authenticator app (TOTP) factor; the console needs one.';
        } else {
          this.stateToken = tx.stateToken;
          this.factorId = factor.id;
          this.step = 'code';
          this.focusCode = true;
        }
      } else if (tx.status === 'SUCCESS' && tx.sessionToken) {
        await this.openConsole(tx.sessionToken);
      } else {
        this.error = `Sign-in stopped at an unexpected step (${tx.status}).`;
      }
    } catch (err) {
      this.error = this.describe(err, 'password');
    } finally {
      this.busy = false;
      this.update();
    }
  }

  private async submitCode(e: SubmitEvent): Promise<void> {
    e.preventDefault();
    const data = new FormData(e.target as HTMLFormElement);
    const passCode = String(data.get('code') ?? '').replace(/\s+/g, '');
    if (!/^\d{6,8}$/.test(passCode)) {
      this.error = 'Enter the 6-digit code from your authenticator app.';
      this.update();
      return;
    }
    this.busy = true;
    this.error = '';
    this.update();
    try {
      const tx = await this.api.call<AuthnTransaction>(
        `${tenantPrefix(this.tenant)}/api/v1/authn/factors/${encodeURIComponent(this.factorId)}/verify`,
        { method: 'POST', body: { stateToken: this.stateToken, passCode }, auth: false },
      );
      if (tx.data.status === 'SUCCESS' && tx.data.sessionToken) {
        await this.openConsole(tx.data.sessionToken);
      } else {
        this.error = `Sign-in stopped at an unexpected step (${tx.data.status}).`;
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.step = 'password';
        this.error = 'The sign-in took too long or was refused. Start again.';
      } else {
        this.error = this.describe(err, 'code');
        this.focusCode = true;
      }
    } finally {
      this.busy = false;
      this.update();
    }
  }

  /** Checks that the session may use the console, then hands it to the app. */
  private async openConsole(token: string): Promise<void> {
    // The app does not hold the new token yet, so this call carries it itself.
    const res = await fetch(`${tenantPrefix(this.tenant)}/api/v1/console/session`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      credentials: 'omit',
      cache: 'no-store',
    });
    if (!res.ok) {
      let summary = `${res.status}`;
      try {
        const body = (await res.json()) as { errorSummary?: string };
        if (body.errorSummary) summary = body.errorSummary;
      } catch {
        // no body
      }
      // The session is useless here; end it rather than leave it behind.
      void fetch(`${tenantPrefix(this.tenant)}/api/v1/sessions/me`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${token}` },
        credentials: 'omit',
      }).catch(() => undefined);
      this.step = 'password';
      this.error =
        res.status === 403
          ? `${this.username} may not use the console of ${this.tenant}: it must be an active member of the administrators' group and sign in with a second factor (${summary}).`
          : `The console session was refused (${summary}).`;
      return;
    }
    const info = parseConsoleInfo(await res.json());
    this.onSuccess(token, this.tenant, info);
  }

  private describe(err: unknown, step: 'password' | 'code'): string {
    if (err instanceof ApiError) {
      if (err.status === 429) {
        return `Too many attempts. Wait ${err.retryAfter ?? 'a few'} seconds and try again.`;
      }
      if (step === 'password' && err.status === 401) {
        return 'Sign-in failed: check the organisation, the username and the password.';
      }
      if (step === 'password' && err.status === 404) return `There is no organisation named “${this.tenant}”.`;
      if (step === 'code' && (err.status === 403 || err.code === 'E0000068')) {
        return 'That code is not right. Wait for the next code and try again.';
      }
    }
    return `Sign-in failed: ${errorText(err)}`;
  }

  render() {
    const content =
      this.step === 'password'
        ? html`<form class="signin-form" novalidate @submit=${(e: SubmitEvent) => void this.submitPassword(e)}>
            <div class="field">
              <label for="signin-tenant">Organisation</label>
              <input id="signin-tenant" name="tenant" type="text" autocomplete="organization" required
                .value=${this.tenant} autocapitalize="none" spellcheck="false" />
            </div>
            <div class="field">
              <label for="signin-username">Username</label>
              <input id="signin-username" name="username" type="text" autocomplete="username" required
                .value=${this.username} autocapitalize="none" spellcheck="false" />
            </div>
            <div class="field">
              <label for="signin-password">Password</label>
              <input id="signin-password" name="password" type="password" autocomplete="current-password" required />
            </div>
            <button type="submit" ?disabled=${this.busy}>${this.busy ? 'Signing in…' : 'Sign in'}</button>
          </form>`
        : html`<form class="signin-form" novalidate @submit=${(e: SubmitEvent) => void this.submitCode(e)}>
            <p>Signing in to <strong>${this.tenant}</strong> as <strong>${this.username}</strong>.</p>
            <div class="field">
              <label for="signin-code">Verification code</label>
              <input id="signin-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                pattern="[0-9]*" maxlength="8" required aria-describedby="signin-code-hint" />
              <p id="signin-code-hint" class="hint">The 6-digit code from your authenticator app.</p>
            </div>
            <div class="actions">
              <button type="submit" ?disabled=${this.busy}>${this.busy ? 'Verifying…' : 'Verify'}</button>
              <button type="button" class="secondary" @click=${() => this.restart()}>Start again</button>
            </div>
          </form>`;
    if (this.focusCode) {
      this.focusCode = false;
      queueMicrotask(() => document.getElementById('signin-code')?.focus());
    }
    return html`<div class="signin">
      <h1 tabindex="-1">Sign in to the console</h1>
      ${this.message ? html`<p class="flash flash-ok" role="status">${this.message}</p>` : ''}
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : ''}
      ${content}
    </div>`;
  }

  private restart(): void {
    this.step = 'password';
    this.stateToken = '';
    this.error = '';
    this.update();
  }
}
