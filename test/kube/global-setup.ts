/**
 * One control plane per test run for the `kube` project. A failure to build or start it is handed
 * to the tests (which then fail with it) rather than thrown here, so the reason shows on each test.
 */
import type { TestProject } from 'vitest/node';
import { startControlPlane } from '../harness/kube.js';

export interface ProvidedControlPlane {
  kubeconfigPath: string;
  server: string;
  caFile: string;
  adminCertFile: string;
  adminKeyFile: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    kube: ProvidedControlPlane | null;
    kubeError: string | null;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  try {
    const plane = await startControlPlane({ log: (line) => console.error(`[kube] ${line}`) });
    const { kubeconfigPath, server, caFile, adminCertFile, adminKeyFile } = plane;
    project.provide('kube', { kubeconfigPath, server, caFile, adminCertFile, adminKeyFile });
    project.provide('kubeError', null);
    return () => plane.stop();
  } catch (err) {
    project.provide('kube', null);
    project.provide('kubeError', (err as Error).message);
    return undefined;
  }
}
