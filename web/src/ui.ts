// Shared pieces of every view: the context a view gets from the app, data loading with its
// loading / empty / error states, and small formatting helpers.
import { type TemplateResult, html, nothing } from 'lit-html';
import type { Activity } from './activity';
import { type Api, errorText } from './api';
import type { Session } from './session';

export { durationSeconds, parseDateTime, splitList } from './format';

export interface DialogSpec {
  title: string;
  /** The dialog's content; re-rendered on every update. */
  body: () => TemplateResult;
  onClose?: () => void;
  wide?: boolean;
}

export interface Ctx {
  api: Api;
  session: Session;
  /** `/t/<tenant>` of the signed-in tenant. */
  prefix: string;
  update(): void;
  navigate(hash: string): void;
  openDialog(spec: DialogSpec): void;
  closeDialog(): void;
  /** A short message in the page's status area (announced politely). */
  flash(text: string, kind?: 'ok' | 'error'): void;
  /** Whether the admin is at the console: polls stop while it is idle. */
  activity: Activity;
}

export interface View {
  readonly title: string;
  busy(): boolean;
  render(): TemplateResult;
  dispose?(): void;
}

export type LoadState = 'loading' | 'ok' | 'error';

export interface LoadOptions {
  /** Keep showing the data while loading (no loading state). */
  quiet?: boolean;
  /** A poll, not the admin's request: its requests carry X-Custos-Background. */
  background?: boolean;
}

/** One thing a view loads, with its state. A later load wins over an earlier one. */
export class Loader<T> {
  state: LoadState = 'loading';
  data: T | undefined;
  error: unknown;
  private generation = 0;

  constructor(
    private readonly ctx: Ctx,
    private readonly fetcher: (options: { background: boolean }) => Promise<T>,
  ) {}

  async load(options: LoadOptions = {}): Promise<void> {
    const gen = ++this.generation;
    if (!options.quiet) this.state = 'loading';
    this.ctx.update();
    try {
      const data = await this.fetcher({ background: options.background ?? false });
      if (gen !== this.generation) return;
      this.data = data;
      this.state = 'ok';
    } catch (e) {
      if (gen !== this.generation) return;
      this.error = e;
      this.state = 'error';
    }
    this.ctx.update();
  }

  get busy(): boolean {
    return this.state === 'loading';
  }
}

export interface ShowOptions<T> {
  /** e.g. "users": "Loading users…", "Could not load users". */
  what: string;
  isEmpty?: (data: T) => boolean;
  empty?: string | TemplateResult;
  ok: (data: T) => TemplateResult;
}

export function show<T>(loader: Loader<T>, o: ShowOptions<T>): TemplateResult {
  if (loader.state === 'loading' && loader.data === undefined) {
    return html`<p class="loading"><span class="spinner" aria-hidden="true"></span>Loading ${o.what}…</p>`;
  }
  if (loader.state === 'error') {
    return html`<div class="error" role="alert">
      <p>Could not load ${o.what}: ${errorText(loader.error)}</p>
      <button type="button" class="secondary" @click=${() => void loader.load()}>Try again</button>
    </div>`;
  }
  const data = loader.data as T;
  if (o.isEmpty?.(data)) return html`<p class="empty">${o.empty ?? `No ${o.what}.`}</p>`;
  return o.ok(data);
}

/** A horizontally scrollable table region, reachable by keyboard. */
export function tableRegion(label: string, table: TemplateResult): TemplateResult {
  return html`<div class="table-wrap" role="region" aria-label=${label} tabindex="0">${table}</div>`;
}

/** RFC 3339 to "2026-01-21 15:05:12Z" (UTC, as the log); "—" for nothing. */
export function fmtTime(iso: unknown): string {
  if (typeof iso !== 'string' || iso === '') return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** A value for display: strings as they are, other JSON compactly, nothing as "—". */
export function text(value: unknown): string {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

export function yesNo(value: unknown): string {
  return value === true ? 'yes' : value === false ? 'no' : '—';
}

const STATUS_CLASSES: Record<string, string> = {
  ACTIVE: 'ok',
  APPROVED: 'ok',
  CONFIRMED: 'ok',
  DELIVERED: 'ok',
  SUCCESS: 'ok',
  ALLOW: 'ok',
  PENDING: 'warn',
  PROVISIONED: 'warn',
  STAGED: 'warn',
  RECOVERY: 'warn',
  DECLARED: 'warn',
  SCOPED: 'warn',
  NOTIFIED: 'info',
  LOCKED: 'bad',
  LOCKED_OUT: 'bad',
  SUSPENDED: 'bad',
  REVOKED: 'bad',
  DENIED: 'bad',
  DENY: 'bad',
  FAILURE: 'bad',
  FAILED: 'bad',
  DEPROVISIONED: 'muted',
  ENDED: 'muted',
  EXPIRED: 'muted',
  USED: 'muted',
  CLOSED: 'muted',
};

export function badge(status: unknown): TemplateResult | typeof nothing {
  if (typeof status !== 'string' || status === '') return nothing;
  return html`<span class="badge badge-${STATUS_CLASSES[status] ?? 'muted'}">${status}</span>`;
}

export function asArray<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

export function str(value: unknown): string {
  return typeof value === 'string' ? value : value === null || value === undefined ? '' : String(value);
}

/** Saves a blob as a file through a temporary link (downloads are not governed by the CSP). */
export function saveFile(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Durations a grant can last, as the API writes them. */
export const DURATIONS: Array<[string, string]> = [
  ['15m', '15 minutes'],
  ['30m', '30 minutes'],
  ['1h', '1 hour'],
  ['2h', '2 hours'],
  ['4h', '4 hours'],
  ['8h', '8 hours'],
  ['12h', '12 hours'],
  ['24h', '24 hours'],
];


export interface ActionDialogSpec {
  title: string;
  intro?: TemplateResult | string;
  /** Form fields (inputs with labels) shown above the buttons. */
  fields?: () => TemplateResult;
  submitLabel: string;
  danger?: boolean;
  wide?: boolean;
  /**
   * Does the action. A string is shown as a status message after the dialog closes; a
   * DialogSpec replaces the dialog (e.g. to show a token once).
   */
  run: (data: FormData) => Promise<string | DialogSpec | void>;
}

/** A dialog with a form, a primary button and Cancel; shows the server's refusal inside. */
export function openActionDialog(ctx: Ctx, spec: ActionDialogSpec): void {
  let busy = false;
  let error = '';
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    if (busy) return;
    busy = true;
    error = '';
    ctx.update();
    try {
      const result = await spec.run(new FormData(e.target as HTMLFormElement));
      if (result && typeof result === 'object') {
        ctx.openDialog(result);
      } else {
        ctx.closeDialog();
        if (typeof result === 'string') ctx.flash(result);
      }
    } catch (err) {
      error = errorText(err);
      busy = false;
      ctx.update();
    }
  };
  ctx.openDialog({
    title: spec.title,
    wide: spec.wide,
    body: () => html`<form novalidate @submit=${(e: SubmitEvent) => void submit(e)}>
      ${spec.intro ? html`<div class="dialog-intro">${spec.intro}</div>` : nothing}
      ${spec.fields ? spec.fields() : nothing}
      ${error ? html`<p class="error" role="alert">${error}</p>` : nothing}
      <div class="actions">
        <button type="submit" class=${spec.danger ? 'danger' : ''} ?disabled=${busy} aria-disabled=${busy ? 'true' : 'false'}>
          ${busy ? 'Working…' : spec.submitLabel}
        </button>
        <button type="button" class="secondary" @click=${() => ctx.closeDialog()}>Cancel</button>
      </div>
    </form>`,
  });
}

/** A dialog that shows something once (a token, a result) with a Close button. */
export function infoDialog(ctx: Ctx, title: string, content: () => TemplateResult): DialogSpec {
  return {
    title,
    body: () => html`${content()}
      <div class="actions"><button type="button" @click=${() => ctx.closeDialog()}>Close</button></div>`,
  };
}

/** The query part of the hash route (`#/log?actor=…`). */
export function hashParams(): URLSearchParams {
  const h = location.hash;
  const i = h.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : h.slice(i + 1));
}
