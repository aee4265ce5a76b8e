// A minimal browser for the server-rendered sign-in page: follows the authorization request,
// keeps cookies, fills the sign-in form (password, then a TOTP code from otplib) and returns the
// redirect back to the application. No JavaScript is needed by the page, so none is run here.

import { authenticator } from 'otplib';

export class CookieJar {
  constructor() {
    this.cookies = new Map();
  }

  take(res) {
    for (const line of res.headers.getSetCookie?.() ?? []) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

const decode = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
  .replace(/&gt;/g, '>').replace(/&amp;/g, '&');

// The first form of an HTML page: its action and its inputs' values.
export function parseForm(html) {
  const form = html.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/);
  if (!form) return null;
  const fields = {};
  for (const input of form[2].matchAll(/<input([^>]*)>/g)) {
    const name = input[1].match(/name="([^"]*)"/)?.[1];
    const value = input[1].match(/value="([^"]*)"/)?.[1] ?? '';
    if (name) fields[decode(name)] = decode(value);
  }
  return { action: decode(form[1]), fields };
}

export async function get(url, jar) {
  const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
  jar.take(res);
  return { status: res.status, location: res.headers.get('location'), text: await res.text(), headers: res.headers };
}

export async function postForm(url, fields, jar) {
  const res = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
    body: new URLSearchParams(fields),
  });
  jar.take(res);
  return { status: res.status, location: res.headers.get('location'), text: await res.text(), headers: res.headers };
}

// The TOTP code of the next 30-second step: the step of "now" is usually spent by the factor's
// activation a moment ago, and the server accepts one step of skew. One sign-in per step.
export function nextCode(secret) {
  return authenticator.clone({ epoch: Date.now() + 30_000 }).generate(secret);
}

// Follows `authUrl` like a browser: signs in on the page when asked and returns the response
// that redirects back to the application ({ status, location }), or the page that stopped it.
export async function signInThrough(authUrl, jar, { username, password, totpSecret }) {
  let res = await get(authUrl, jar);
  if (res.status !== 200) return res;
  let form = parseForm(res.text);
  if (!form) return res;
  const base = new URL(authUrl);
  res = await postForm(new URL(form.action, base), { ...form.fields, username, password }, jar);
  if (res.status !== 200) return res;
  form = parseForm(res.text);
  if (!form || !('passcode' in form.fields)) return res;
  return postForm(new URL(form.action, base), { ...form.fields, passcode: nextCode(totpSecret) }, jar);
}
