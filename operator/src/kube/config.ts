/**
 * @kubernetes/client-node's KubeConfig for the file given, else its default chain ($KUBECONFIG,
 * ~/.kube/config, the in-cluster service account). The package stays in node_modules (not bundled)
 * and importing it loads its generated API clients too (~40 MiB of heap), so this module is only
 * imported dynamically, by credentials.ts, where a kubeconfig needs more than credentials.ts reads.
 */
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(path?: string): KubeConfig {
  const config = new KubeConfig();
  if (path) config.loadFromFile(path);
  else config.loadFromDefault();
  return config;
}
