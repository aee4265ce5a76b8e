// The console session: the sign-in API's session token, kept in sessionStorage (gone when the
// tab closes, never in a cookie), with the tenant's name beside it.

export const SESSION_STORAGE_KEY = 'custos.console.session';
export const TENANT_STORAGE_KEY = 'custos.console.tenant';

/** What `GET/POST /t/{tenant}/api/v1/console/session` answers. */
export interface ConsoleInfo {
  user: { id: string; login: string; displayName?: string | null };
  tenant: { name: string; displayName?: string | null };
  provider: boolean;
  expiresAt?: string;
  logOrigin?: string;
}

export interface Session {
  token: string;
  tenant: string;
  info: ConsoleInfo;
}

export function storedSession(): { token: string; tenant: string } | null {
  try {
    const token = sessionStorage.getItem(SESSION_STORAGE_KEY);
    const tenant = sessionStorage.getItem(TENANT_STORAGE_KEY);
    return token && tenant ? { token, tenant } : null;
  } catch {
    return null;
  }
}

export function storeSession(token: string, tenant: string): void {
  sessionStorage.setItem(SESSION_STORAGE_KEY, token);
  sessionStorage.setItem(TENANT_STORAGE_KEY, tenant);
}

export function clearSession(): void {
  try {
    sessionStorage.removeItem(SESSION_STORAGE_KEY);
    sessionStorage.removeItem(TENANT_STORAGE_KEY);
  } catch {
    // storage unavailable: nothing was kept
  }
}

/** Checks the shape of a console session answer; throws when it is not one. */
export function parseConsoleInfo(data: unknown): ConsoleInfo {
  const d = data as Partial<ConsoleInfo> | null;
  if (!d || typeof d !== 'object' || !d.user || typeof d.user.id !== 'string' || !d.tenant) {
    throw new Error('the server answered an unexpected console session');
  }
  return {
    user: { id: d.user.id, login: String(d.user.login ?? d.user.id), displayName: d.user.displayName ?? null },
    tenant: { name: String(d.tenant.name ?? ''), displayName: d.tenant.displayName ?? null },
    provider: d.provider === true,
    expiresAt: typeof d.expiresAt === 'string' ? d.expiresAt : undefined,
    logOrigin: typeof d.logOrigin === 'string' ? d.logOrigin : undefined,
  };
}
