/**
 * `/ui/`: the trail viewer's built assets (index.html and content-hashed scripts and styles, made
 * by collector/ui/build.mjs), read once from disk and served from memory with a strict CSP, so the
 * page runs only its own code and talks only to this collector. The assets are found next to the
 * compiled command (cli/dist/ui) or, running from sources, in the build output of the repository.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError } from './respond.js';
import { type UiSettings, uiCsp } from './ui-sign-in.js';

const here = dirname(fileURLToPath(import.meta.url));
/** cli/dist/{chunks,commands}/x.js → cli/dist/ui; collector/src/http/x.ts → cli/dist/ui. */
const CANDIDATES = [resolve(here, '../ui'), resolve(here, '../../../cli/dist/ui')];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The CSP without OIDC sign-in: only our own scripts, styles and API. */
export const UI_CSP = uiCsp();

/** The settings of a collector that offers no OIDC sign-in. */
export const NO_SIGN_IN: UiSettings = { csp: UI_CSP, signIn: Buffer.from(JSON.stringify({ issuers: [] })) };

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

interface Asset {
  body: Buffer;
  headers: Record<string, string>;
}

let loaded: Promise<Map<string, Asset> | undefined> | undefined;

export function isUiPath(pathname: string): boolean {
  return pathname === '/ui' || pathname.startsWith('/ui/');
}

export function locateUiDir(candidates: readonly string[] = CANDIDATES): string | undefined {
  return candidates.find((dir) => existsSync(join(dir, 'index.html')));
}

/** Reads every servable file of the directory; names carry a content hash except index.html. */
export async function loadUiAssets(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const name of await readdir(dir)) {
    const type = TYPES[extname(name)];
    if (!type || !/^[A-Za-z0-9_.-]+$/.test(name)) continue;
    const cache = name === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable';
    assets.set(name, {
      body: await readFile(join(dir, name)),
      headers: { 'Content-Type': type, 'Cache-Control': cache, ...SECURITY_HEADERS },
    });
  }
  return assets;
}

export async function handleUi(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  settings: UiSettings = NO_SIGN_IN,
): Promise<void> {
  if (url.pathname === '/ui') {
    res.writeHead(308, { Location: `/ui/${url.search}`, 'Content-Length': 0 });
    res.end();
    return;
  }
  if (url.pathname === '/ui/sign-in.json') {
    // From the config, not the build: which issuers the viewer offers.
    res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': settings.csp,
      ...SECURITY_HEADERS,
      'Content-Length': settings.signIn.length,
    });
    res.end(req.method === 'HEAD' ? undefined : settings.signIn);
    return;
  }
  loaded ??= (async () => {
    const dir = locateUiDir();
    return dir ? loadUiAssets(dir) : undefined;
  })();
  const assets = await loaded;
  if (!assets) {
    loaded = undefined; // look again next time: a build may have run meanwhile
    throw new HttpError(503, 'the trail viewer is not built into this collector (run "npm run build")');
  }
  const name = url.pathname === '/ui/' ? 'index.html' : url.pathname.slice('/ui/'.length);
  const asset = assets.get(name);
  if (!asset) throw new HttpError(404, `no such viewer asset: ${url.pathname}`);
  res.writeHead(200, {
    ...asset.headers,
    'Content-Security-Policy': settings.csp,
    'Content-Length': asset.body.length,
  });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}
