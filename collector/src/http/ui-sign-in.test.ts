import type { CollectorConfig } from '@byline/api';
import { describe, expect, test } from 'vitest';
import { UI_CSP } from './ui-assets.js';
import { uiSettingsFor } from './ui-sign-in.js';

const base: CollectorConfig = { listen: '127.0.0.1:0', store: 'sqlite:x', auth: { static: [] } };

describe('the viewer sign-in settings', () => {
  test('without auth.oidc: no issuers, and the page may fetch only its own collector', () => {
    const s = uiSettingsFor(base);
    expect(JSON.parse(s.signIn.toString())).toEqual({ issuers: [] });
    expect(s.csp).toBe(UI_CSP);
    expect(s.csp).toContain("connect-src 'self';");
  });

  test('issuers with a viewer client are offered, and only their origins are added to connect-src', () => {
    const s = uiSettingsFor({
      ...base,
      auth: {
        oidc: {
          issuers: [
            {
              issuer: 'https://login.example.com/realms/x',
              audiences: ['viewer'],
              viewerClientId: 'viewer',
              discoveryUrl: 'https://meta.example.com/x/.well-known/openid-configuration',
            },
            { issuer: 'https://ci.example.com', audiences: ['ci'] },
          ],
          readers: [{ group: 'oidc:auditors' }],
        },
      },
    });
    expect(JSON.parse(s.signIn.toString())).toEqual({
      issuers: [
        { issuer: 'https://login.example.com/realms/x', clientId: 'viewer', scopes: 'openid email profile groups' },
      ],
    });
    expect(s.csp).toContain("connect-src 'self' https://login.example.com https://meta.example.com;");
    expect(s.csp).not.toContain('ci.example.com');
    expect(s.csp).toContain("script-src 'self';");
    expect(s.csp).toContain("form-action 'none'");
  });
});
