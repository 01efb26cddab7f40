/**
 * `npm run cluster:build`: builds etcd and kube-apiserver into the cache unless they are already
 * there (or named by KUBEBUILDER_ASSETS / TEST_ASSET_*).
 */
import { buildBinaries, cacheDir, ETCD_VERSION, findBinaries, KUBERNETES_VERSION } from './assets.js';

const log = (line: string) => console.log(`[cluster:build] ${line}`);

try {
  const existing = findBinaries();
  if (existing) {
    log(`kube-apiserver ${KUBERNETES_VERSION} and etcd ${ETCD_VERSION} already available (${existing.source}):`);
  } else {
    log(
      `building kube-apiserver ${KUBERNETES_VERSION} and etcd ${ETCD_VERSION} from their Go modules into ${cacheDir()}`,
    );
  }
  const binaries = existing ?? (await buildBinaries(log));
  log(`  kube-apiserver: ${binaries.kubeApiserver}`);
  log(`  etcd:           ${binaries.etcd}`);
} catch (err) {
  console.error(`[cluster:build] failed: ${(err as Error).message}`);
  process.exit(1);
}
