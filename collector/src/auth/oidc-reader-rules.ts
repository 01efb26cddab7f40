/**
 * `auth.oidc.readers`: who reads what when no API server decides. A rule names a user or a group
 * (with its prefix, as RBAC would) and the namespaces it may read, or every namespace without a
 * list. Rules add up; a reader no rule names reads nothing. Pure.
 */
import type { OidcReaderRuleConfig } from '@byline/api';

export type RuleGrant = { all: true } | { all: false; namespaces: ReadonlySet<string> } | null;

export function ruleGrant(
  rules: readonly OidcReaderRuleConfig[],
  username: string,
  groups: readonly string[],
): RuleGrant {
  const namespaces = new Set<string>();
  let matched = false;
  for (const rule of rules) {
    const applies = rule.user !== undefined ? rule.user === username : groups.includes(rule.group!);
    if (!applies) continue;
    if (rule.namespaces === undefined) return { all: true };
    matched = true;
    for (const ns of rule.namespaces) namespaces.add(ns);
  }
  return matched ? { all: false, namespaces } : null;
}
