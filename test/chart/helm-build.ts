/** `npm run helm:build`: helm from its Go module into the cache, unless it is already there. */
import { buildHelm, findHelm, HELM_VERSION } from './helm.js';

try {
  const existing = findHelm();
  const path = existing ?? (await buildHelm((l) => console.log(`[helm:build] ${l}`)));
  console.log(`[helm:build] helm ${HELM_VERSION}${existing ? ' already available' : ''}: ${path}`);
} catch (err) {
  console.error(`[helm:build] failed: ${(err as Error).message}`);
  process.exit(1);
}
