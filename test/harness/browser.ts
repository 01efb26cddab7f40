/**
 * The person at the identity provider's pages, for tests: follows redirects, keeps cookies, and
 * submits each page's first form (hidden fields as given, visible ones from `fields`) until a page
 * has no form left. Enough for oidc-provider's device, login and consent pages; no JavaScript.
 */
import { caFetch } from '@byline/sidecar';

interface Input {
  name: string;
  value: string;
  type: string;
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag);
  return m
    ? m[1]!
        .replace(/&amp;/g, '&')
        .replace(/&quot;/g, '"')
        .replace(/&#x2F;/g, '/')
    : undefined;
}

function firstForm(html: string): { action: string | undefined; method: string; inputs: Input[] } | undefined {
  const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!m) return undefined;
  const inputs: Input[] = [];
  for (const tag of m[2]!.match(/<input\b[^>]*>/gi) ?? []) {
    const name = attr(tag, 'name');
    if (name) inputs.push({ name, value: attr(tag, 'value') ?? '', type: (attr(tag, 'type') ?? 'text').toLowerCase() });
  }
  return { action: attr(m[1]!, 'action'), method: (attr(m[1]!, 'method') ?? 'get').toLowerCase(), inputs };
}

export class TestBrowser {
  private readonly cookies = new Map<string, Map<string, string>>();
  private readonly httpsFetch;

  constructor(ca: Buffer) {
    this.httpsFetch = caFetch(ca);
  }

  private async request(url: URL, init: RequestInit = {}): Promise<Response> {
    const jar = this.cookies.get(url.host) ?? new Map<string, string>();
    const headers = new Headers(init.headers);
    if (jar.size > 0) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const res =
      url.protocol === 'https:'
        ? await this.httpsFetch(url.href, { ...init, headers })
        : await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const at = pair!.indexOf('=');
      jar.set(pair!.slice(0, at).trim(), pair!.slice(at + 1).trim());
    }
    this.cookies.set(url.host, jar);
    return res;
  }

  /** Opens `start` and goes through every page; returns the text of the last one. */
  async complete(start: string, fields: Record<string, string> = {}): Promise<string> {
    let url = new URL(start);
    let res = await this.request(url);
    for (let step = 0; step < 30; step++) {
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        url = new URL(location, url);
        res = await this.request(url);
        continue;
      }
      const html = await res.text();
      const form = firstForm(html);
      if (!form) return html;
      const body = new URLSearchParams();
      for (const input of form.inputs) body.set(input.name, fields[input.name] ?? input.value);
      const target = new URL(form.action ?? url.href, url);
      if (form.method === 'post') {
        res = await this.request(target, {
          method: 'POST',
          body: body.toString(),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
      } else {
        for (const [k, v] of body) target.searchParams.set(k, v);
        res = await this.request(target);
      }
      url = target;
    }
    throw new Error(`still being sent from page to page after 30 steps (at ${url.href})`);
  }
}
