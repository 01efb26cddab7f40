/**
 * The kubeconfig the operator and the CLI's Kubernetes commands use: the file given, else the
 * default chain of @kubernetes/client-node ($KUBECONFIG, ~/.kube/config, the in-cluster service
 * account). Imported statically here so that bundles keep only KubeConfig of the Kubernetes
 * client (under 2 MB), not its generated API clients (14 MB, which a dynamic import would keep).
 */
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(path?: string): KubeConfig {
  const config = new KubeConfig();
  if (path) config.loadFromFile(path);
  else config.loadFromDefault();
  return config;
}
