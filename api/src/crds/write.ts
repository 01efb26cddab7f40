/** `npm run crds`: writes the CRD YAML generated from the TypeBox types into crds/ and the Helm chart. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedCrdFiles } from './files.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
for (const file of generatedCrdFiles()) {
  const target = join(root, file.path);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, file.text);
  console.log(`wrote ${file.path}`);
}
