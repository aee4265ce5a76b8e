import { describe, expect, it } from 'vitest';
import { basePathOf, expectedLogOrigin, isOriginOfTenant } from './origin';

describe('the log origin the browser expects', () => {
  it('is the page host and the tenant signed in to, as the server forms it', () => {
    expect(expectedLogOrigin('127.0.0.1:8080', basePathOf('/console/'), 'acme')).toBe('127.0.0.1:8080/t/acme');
    expect(expectedLogOrigin('id.example.com', '', 'acme')).toBe('id.example.com/t/acme');
    expect(expectedLogOrigin('[::1]:8443', '', 'acme')).toBe('[::1]:8443/t/acme');
  });

  it('is the provider log for the built-in provider tenant', () => {
    expect(expectedLogOrigin('id.example.com', '', 'provider')).toBe('id.example.com/provider');
  });

  it('keeps a path in front of /console/', () => {
    expect(basePathOf('/idp/console/')).toBe('/idp');
    expect(basePathOf('/idp/console/index.html')).toBe('/idp');
    expect(basePathOf('/console')).toBe('');
    expect(expectedLogOrigin('example.com', basePathOf('/idp/console/'), 'acme')).toBe('example.com/idp/t/acme');
  });

  it('is nothing without a host or a tenant', () => {
    expect(expectedLogOrigin('', '', 'acme')).toBe('');
    expect(expectedLogOrigin('example.com', '', '')).toBe('');
  });
});

describe('origins an admin may accept', () => {
  it('are the same tenant under another host', () => {
    expect(isOriginOfTenant('old.example.com/t/acme', 'acme')).toBe(true);
    expect(isOriginOfTenant('old.example.com:8443/idp/t/acme', 'acme')).toBe(true);
    expect(isOriginOfTenant('old.example.com/provider', 'provider')).toBe(true);
  });

  it("are never another tenant's log or the provider's", () => {
    expect(isOriginOfTenant('id.example.com/t/globex', 'acme')).toBe(false);
    expect(isOriginOfTenant('id.example.com/t/xacme', 'acme')).toBe(false);
    expect(isOriginOfTenant('id.example.com/provider', 'acme')).toBe(false);
    expect(isOriginOfTenant('id.example.com/t/acme', 'provider')).toBe(false);
    expect(isOriginOfTenant('/t/acme', 'acme')).toBe(false);
    expect(isOriginOfTenant('evil.example/t/globex/t/acme', 'acme')).toBe(false);
    expect(isOriginOfTenant('evil.example/provider/t/acme', 'acme')).toBe(false);
    expect(isOriginOfTenant('evil example/t/acme', 'acme')).toBe(false);
  });
});
