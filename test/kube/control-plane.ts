/** The control plane started by global-setup.ts, for test files of the `kube` project. */
import { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import type { ProvidedControlPlane } from './global-setup.js';

/** Throws the build or start error, so a test without its API server fails instead of skipping. */
export function controlPlane(): ProvidedControlPlane & { kubeConfig: KubeConfig } {
  const error = inject('kubeError');
  const plane = inject('kube');
  if (error || !plane) throw new Error(`no Kubernetes control plane for this test: ${error ?? 'not started'}`);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(plane.kubeconfigPath);
  return { ...plane, kubeConfig };
}
