/**
 * What the viewer needs to offer OIDC sign-in, from `auth.oidc`: each issuer with a viewer client
 * (served, unauthenticated and non-secret, as `/ui/sign-in.json`), and the CSP that lets the page
 * talk to those issuers — discovery and the token endpoint, from the browser, with PKCE — and to
 * nothing else. Pure.
 */
import { type CollectorConfig, DEFAULT_VIEWER_SCOPES } from '@byline/api';

export interface ViewerIssuer {
  issuer: string;
  clientId: string;
  scopes: string;
}

export interface UiSettings {
  /** The Content-Security-Policy of every viewer page and asset. */
  csp: string;
  /** `/ui/sign-in.json`: `{ issuers: ViewerIssuer[] }`. */
  signIn: Buffer;
}

export function viewerIssuers(config: CollectorConfig): ViewerIssuer[] {
  return (config.auth.oidc?.issuers ?? []).flatMap((i) =>
    i.viewerClientId === undefined
      ? []
      : [{ issuer: i.issuer, clientId: i.viewerClientId, scopes: i.viewerScopes ?? DEFAULT_VIEWER_SCOPES }],
  );
}

/**
 * Only our own scripts, styles and API, plus the sign-in issuers' origins for fetch; no framing, no
 * forms posting anywhere, no plugins. The issuer's token endpoint must be on its own origin (or
 * the discovery URL's): the page may fetch nothing else.
 */
export function uiCsp(connectOrigins: readonly string[] = []): string {
  const connect = ["'self'", ...new Set(connectOrigins)].join(' ');
  return (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    `connect-src ${connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`
  );
}

export function uiSettingsFor(config: CollectorConfig): UiSettings {
  const issuers = viewerIssuers(config);
  const origins = (config.auth.oidc?.issuers ?? [])
    .filter((i) => i.viewerClientId !== undefined)
    .flatMap((i) => [i.issuer, ...(i.discoveryUrl ? [i.discoveryUrl] : [])].map((u) => new URL(u).origin));
  return { csp: uiCsp(origins), signIn: Buffer.from(JSON.stringify({ issuers })) };
}
