/**
 * `auth.oidc` of the collector: people who read the trail (the viewer, `byline trail`) with an OIDC
 * token from a trusted issuer, verified exactly as the gateway verifies a password token. The
 * verified name and groups get a prefix, as the API server's `--oidc-username-prefix` does, so an
 * issuer's `ada@example.com` (`oidc:ada@example.com`) can never pass for a Kubernetes user or group
 * of the same name. Who may read what: RBAC (SubjectAccessReview) when `auth.kubernetes` is
 * configured, else the `readers` rules here. Field names are public interface.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { Strict } from './config-parts.js';
import { OidcIssuer } from './gateway-config.js';
import { ValidationError } from './validate.js';

const NamespaceName = T.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' });

export const DEFAULT_READER_PREFIX = 'oidc:';
export const DEFAULT_VIEWER_SCOPES = 'openid email profile groups';

export const CollectorOidcIssuer = T.Object(
  {
    ...OidcIssuer.properties,
    /** Put before the name claim's value (default "oidc:"); never empty, never "system:…". */
    usernamePrefix: T.Optional(T.String({ minLength: 1 })),
    /** Put before each group (default: the usernamePrefix). */
    groupsPrefix: T.Optional(T.String({ minLength: 1 })),
    /**
     * The viewer's public client at this issuer (authorization code + PKCE, redirect `<collector>/ui/`):
     * the viewer offers "Sign in with <issuer>". Its ID tokens' audience, so it must be in `audiences`.
     */
    viewerClientId: T.Optional(T.String({ minLength: 1 })),
    /** Scopes the viewer asks for (default "openid email profile groups"). */
    viewerScopes: T.Optional(T.String({ pattern: '(^|\\s)openid(\\s|$)', description: 'scopes including openid' })),
  },
  Strict,
);

/** A static rule: this user or group (prefixed, as RBAC would name it) reads these namespaces, or all. */
export const OidcReaderRule = T.Object(
  {
    user: T.Optional(T.String({ minLength: 1 })),
    group: T.Optional(T.String({ minLength: 1 })),
    namespaces: T.Optional(T.Array(NamespaceName, { minItems: 1 })),
  },
  Strict,
);

export const CollectorOidc = T.Object(
  {
    issuers: T.Array(CollectorOidcIssuer, { minItems: 1 }),
    /** Leeway for exp/nbf (default 30, at most 300). */
    clockToleranceSeconds: T.Optional(T.Integer({ minimum: 0, maximum: 300 })),
    /** Who reads what, without `auth.kubernetes` (with it, RBAC decides and these are refused). */
    readers: T.Optional(T.Array(OidcReaderRule, { minItems: 1 })),
  },
  Strict,
);

export type CollectorOidcConfig = Static<typeof CollectorOidc>;
export type CollectorOidcIssuerConfig = Static<typeof CollectorOidcIssuer>;
export type OidcReaderRuleConfig = Static<typeof OidcReaderRule>;

/** The usernamePrefix an issuer's readers get. */
export const usernamePrefixOf = (i: CollectorOidcIssuerConfig) => i.usernamePrefix ?? DEFAULT_READER_PREFIX;
/** The groupsPrefix an issuer's readers' groups get. */
export const groupsPrefixOf = (i: CollectorOidcIssuerConfig) => i.groupsPrefix ?? usernamePrefixOf(i);

/**
 * What the schema cannot say: prefixes that cannot reach Kubernetes' own names, one issuer once,
 * the viewer's client among the audiences, readers rules with exactly one of user/group, and only
 * where RBAC does not decide.
 */
export function checkCollectorOidc(oidc: CollectorOidcConfig, kubernetes: boolean, what = 'collector config'): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  oidc.issuers.forEach((issuer, i) => {
    const field = `auth.oidc.issuers[${i}]`;
    if (seen.has(issuer.issuer)) problems.push(`${field}.issuer: "${issuer.issuer}" is listed twice`);
    seen.add(issuer.issuer);
    for (const [name, prefix] of [
      ['usernamePrefix', usernamePrefixOf(issuer)],
      ['groupsPrefix', groupsPrefixOf(issuer)],
    ] as const) {
      if (prefix.startsWith('system:')) {
        problems.push(`${field}.${name}: "${prefix}" would make names in Kubernetes' reserved "system:" space`);
      }
    }
    if (issuer.viewerClientId !== undefined && !issuer.audiences.includes(issuer.viewerClientId)) {
      problems.push(
        `${field}.viewerClientId: "${issuer.viewerClientId}" must also be in audiences (its ID tokens are for it)`,
      );
    }
  });
  if (oidc.readers !== undefined && kubernetes) {
    problems.push('auth.oidc.readers: with auth.kubernetes, RBAC decides who reads (SubjectAccessReview); remove it');
  }
  if (oidc.readers === undefined && !kubernetes) {
    problems.push(
      'auth.oidc.readers: list who may read (user or group, with its prefix), or configure auth.kubernetes',
    );
  }
  (oidc.readers ?? []).forEach((rule, i) => {
    if ((rule.user === undefined) === (rule.group === undefined)) {
      problems.push(`auth.oidc.readers[${i}]: give exactly one of "user" and "group"`);
    }
  });
  if (problems.length > 0) throw new ValidationError(what, problems);
}
