// Which log the console expects, worked out in the browser rather than taken from the server
// (docs/system-log.md, "Origin"): `<host>/t/<tenant name>` for a tenant's log and
// `<host>/provider` for the provider's, where `<host>` is the server's public base URL without
// its scheme. The console is served from that base URL, so `<host>` is the page's host plus
// any path in front of `/console/`; the tenant is the organisation the admin signed in to.

/** The name of the built-in tenant whose log is the provider log. */
export const PROVIDER_TENANT = 'provider';

/** The path in front of `/console/` in the page's path ('' when the console is at the root). */
export function basePathOf(pathname: string): string {
  const i = pathname.indexOf('/console/');
  const base = i >= 0 ? pathname.slice(0, i) : pathname.replace(/\/console$/, '');
  return base.replace(/\/+$/, '');
}

/** The origin of `tenant`'s log on the server at `host` (`location.host`) and `basePath`. */
export function expectedLogOrigin(host: string, basePath: string, tenant: string): string {
  if (!host || !tenant) return '';
  const prefix = `${host}${basePath}`;
  return tenant === PROVIDER_TENANT ? `${prefix}/provider` : `${prefix}/t/${tenant}`;
}

/**
 * Whether `origin` names `tenant`'s log under some host. A log keeps the origin it began with
 * when the public base URL changes later, so an admin may accept such an origin; an origin of
 * another tenant (another organisation's log, signed by the same key) is never acceptable.
 */
export function isOriginOfTenant(origin: string, tenant: string): boolean {
  const suffix = tenant === PROVIDER_TENANT ? '/provider' : `/t/${tenant}`;
  if (!tenant || !origin.endsWith(suffix)) return false;
  const host = origin.slice(0, origin.length - suffix.length);
  // A host (and port, and path): no whitespace, and not itself a tenant's or provider's log.
  return host.length > 0 && !/\s/.test(host) && !/\/(t\/[^/]*|provider)$/.test(host) && !host.includes('/t/');
}
