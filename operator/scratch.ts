import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { KubeClient } from './src/kube/client.js';

const kc = new KubeConfig();
kc.loadFromFile('../.cache/cluster/kubeconfig');
const c = new KubeClient(kc);
for (const f of ['byline.dev_databaseroutes.yaml', 'byline.dev_agentidentities.yaml']) {
  try {
    await c.create(
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      parse(readFileSync(`../crds/${f}`, 'utf8')),
    );
  } catch (e) {
    console.log((e as Error).message.slice(0, 100));
  }
}
await new Promise((r) => setTimeout(r, 2000));
const list = await c.get<any>('/apis/byline.dev/v1alpha1/databaseroutes');
console.log('list rv', list.metadata.resourceVersion);
await new Promise<void>((resolve) => {
  c.stream(
    '/apis/byline.dev/v1alpha1/namespaces/default/databaseroutes',
    { watch: 1, resourceVersion: '1', timeoutSeconds: 2 },
    (l: any) => console.log('line', l.type, JSON.stringify(l.object).slice(0, 300)),
    (e) => {
      console.log('closed', e?.message);
      resolve();
    },
  );
});
c.close();
