import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type InjectionInput, mutatePod } from './mutate.js';
import {
  DEFAULT_SIDECAR_NODE_OPTIONS,
  parseByteQuantity,
  sidecarDefaultsFrom,
  sidecarSettings,
} from './sidecar-settings.js';
import { applyPatch } from './testing.js';

const load = (name: string) =>
  parseYaml(readFileSync(join(import.meta.dirname, 'testdata', `${name}.input.yaml`), 'utf8')) as InjectionInput;

describe('sidecarSettings', () => {
  it('defaults to the operator defaults, then the built-in ones', () => {
    expect(sidecarSettings({})).toEqual({
      resources: { requests: { cpu: '50m', memory: '64Mi' } },
      maxSpoolBytes: 1024 ** 3,
      spoolSizeLimit: '1088Mi',
    });
    expect(
      sidecarSettings(
        {},
        { resources: { requests: { cpu: '100m' }, limits: { memory: '256Mi' } }, maxSpoolBytes: 256 * 1024 ** 2 },
      ),
    ).toEqual({
      resources: { requests: { cpu: '100m' }, limits: { memory: '256Mi' } },
      maxSpoolBytes: 256 * 1024 ** 2,
      spoolSizeLimit: '320Mi',
    });
  });

  it('takes overrides from pod annotations', () => {
    expect(
      sidecarSettings({
        'byline.dev/sidecar-cpu-request': '200m',
        'byline.dev/sidecar-cpu-limit': '1',
        'byline.dev/sidecar-memory-request': '96Mi',
        'byline.dev/sidecar-memory-limit': '192Mi',
        'byline.dev/spool-size': '2Gi',
      }),
    ).toEqual({
      resources: { requests: { cpu: '200m', memory: '96Mi' }, limits: { cpu: '1', memory: '192Mi' } },
      maxSpoolBytes: 2 * 1024 ** 3,
      spoolSizeLimit: '2112Mi',
    });
  });

  it.each([
    ['byline.dev/sidecar-cpu-request', 'lots', /sidecar-cpu-request: "lots" is not a cpu quantity/],
    ['byline.dev/sidecar-memory-limit', '-1Mi', /sidecar-memory-limit: "-1Mi" is not a memory quantity/],
    ['byline.dev/spool-size', '1Ki', /spool-size: "1Ki" is not a size of at least 64Ki/],
    ['byline.dev/spool-size', '1e9', /spool-size: "1e9"/],
    ['byline.dev/spool-size', '99999999999999Ti', /spool-size/],
  ])('refuses %s: %s, naming it', (annotation, value, message) => {
    const result = sidecarSettings({ [annotation]: value });
    expect(result).toHaveProperty('problem');
    expect((result as { problem: string }).problem).toMatch(message);
  });

  it('parses byte quantities', () => {
    expect(parseByteQuantity('512Mi')).toBe(512 * 1024 ** 2);
    expect(parseByteQuantity('2G')).toBe(2e9);
    expect(parseByteQuantity('65536')).toBe(65536);
    expect(parseByteQuantity('1.5Gi')).toBeUndefined();
    expect(parseByteQuantity('')).toBeUndefined();
  });
});

describe('sidecarDefaultsFrom (the operator flags)', () => {
  it('turns the flags into defaults and names a bad flag', () => {
    expect(sidecarDefaultsFrom({ cpuLimit: '500m', spoolSize: '256Mi' })).toEqual({
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m' } },
      maxSpoolBytes: 256 * 1024 ** 2,
      nodeOptions: DEFAULT_SIDECAR_NODE_OPTIONS,
    });
    expect(sidecarDefaultsFrom({ memoryRequest: '64 MB' })).toEqual({
      problem: '--sidecar-memory-request: "64 MB" is not a memory quantity like 128Mi',
    });
    expect(sidecarDefaultsFrom({ spoolSize: '10' })).toEqual({
      problem: '--sidecar-spool-size: "10" is not a size of at least 64Ki like 512Mi',
    });
  });
});

describe('--sidecar-node-options', () => {
  it('takes V8 heap sizing, or nothing for Node defaults', () => {
    expect(sidecarDefaultsFrom({ nodeOptions: ' --max-semi-space-size=2  --max-old-space-size=96 ' })).toMatchObject({
      nodeOptions: '--max-semi-space-size=2 --max-old-space-size=96',
    });
    expect(sidecarDefaultsFrom({ nodeOptions: '' })).toMatchObject({ nodeOptions: '' });
  });

  it('refuses anything that would load code, open a port or is not heap sizing, naming it', () => {
    for (const bad of [
      '--require=/tmp/x.js',
      '--import=data:text/javascript,1',
      '--inspect=0.0.0.0:9229',
      '--max-semi-space-size=4 --inspect',
      '--max-semi-space-size=4;--inspect',
      '--max-semi-space-size=0',
      '--single-threaded-gc',
      '-r /tmp/x.js',
    ]) {
      const got = sidecarDefaultsFrom({ nodeOptions: bad });
      expect(got, bad).toMatchObject({
        problem: expect.stringMatching(/^--sidecar-node-options: ".+" is not allowed/),
      });
    }
  });
});

describe('injection with sidecar settings', () => {
  function inject(annotations: Record<string, string>, options: Partial<InjectionInput['options']> = {}) {
    const input = load('inject-one-route');
    input.pod.metadata = { ...input.pod.metadata, annotations: { ...input.pod.metadata?.annotations, ...annotations } };
    input.options = { ...input.options, ...options };
    const result = mutatePod(input);
    return { result, input, pod: result.outcome === 'injected' ? applyPatch(input.pod, result.patch) : undefined };
  }
  const sidecarOf = (pod: V1Pod | undefined) => pod?.spec?.initContainers?.find((c) => c.name === 'byline-proxy');
  const configOf = (pod: V1Pod | undefined) =>
    JSON.parse(sidecarOf(pod)?.env?.find((e) => e.name === 'BYLINE_SIDECAR_CONFIG')?.value ?? 'null');

  it("runs the sidecar with the operator's NODE_OPTIONS: the default, another, or none", () => {
    const nodeOptionsOf = (pod: V1Pod | undefined) => sidecarOf(pod)?.env?.filter((e) => e.name === 'NODE_OPTIONS');
    expect(nodeOptionsOf(inject({}).pod)).toEqual([{ name: 'NODE_OPTIONS', value: DEFAULT_SIDECAR_NODE_OPTIONS }]);
    const other = '--max-semi-space-size=2';
    expect(nodeOptionsOf(inject({}, { sidecar: { nodeOptions: other } }).pod)).toEqual([
      { name: 'NODE_OPTIONS', value: other },
    ]);
    expect(nodeOptionsOf(inject({}, { sidecar: { nodeOptions: '' } }).pod)).toEqual([]);
  });

  it('limits the sidecar to two malloc arenas, whatever its NODE_OPTIONS', () => {
    const arenasOf = (pod: V1Pod | undefined) => sidecarOf(pod)?.env?.filter((e) => e.name === 'MALLOC_ARENA_MAX');
    for (const nodeOptions of [undefined, '', '--max-semi-space-size=2']) {
      const options = nodeOptions === undefined ? {} : { sidecar: { nodeOptions } };
      expect(arenasOf(inject({}, options).pod)).toEqual([{ name: 'MALLOC_ARENA_MAX', value: '2' }]);
    }
  });

  it('sizes the sidecar and its spool from the pod annotations over the operator defaults', () => {
    const { pod } = inject(
      { 'byline.dev/spool-size': '256Mi', 'byline.dev/sidecar-memory-limit': '128Mi' },
      { sidecar: { resources: { requests: { cpu: '25m', memory: '48Mi' } }, maxSpoolBytes: 512 * 1024 ** 2 } },
    );
    expect(sidecarOf(pod)?.resources).toEqual({
      requests: { cpu: '25m', memory: '48Mi' },
      limits: { memory: '128Mi' },
    });
    expect(configOf(pod).audit.maxSpoolBytes).toBe(256 * 1024 ** 2);
    expect(pod?.spec?.volumes?.find((v) => v.name === 'byline-spool')).toEqual({
      name: 'byline-spool',
      emptyDir: { sizeLimit: '320Mi' },
    });
  });

  it('refuses a pod whose sidecar annotations do not parse, naming the annotation', () => {
    const { result } = inject({ 'byline.dev/sidecar-cpu-limit': 'unlimited' });
    expect(result).toMatchObject({ outcome: 'refused', reason: 'InvalidSidecarSettings' });
    expect(result.message).toContain('byline.dev/sidecar-cpu-limit');
  });

  it('adds the sidecar image pull secrets the pod does not list, keeping its own', () => {
    expect(inject({}, { imagePullSecrets: ['byline-registry'] }).pod?.spec?.imagePullSecrets).toEqual([
      { name: 'byline-registry' },
    ]);
    const input = load('inject-one-route');
    input.pod.spec = { ...input.pod.spec!, imagePullSecrets: [{ name: 'app-registry' }, { name: 'byline-registry' }] };
    input.options = { ...input.options, imagePullSecrets: ['byline-registry', 'mirror'] };
    const result = mutatePod(input);
    expect(applyPatch(input.pod, result.patch).spec?.imagePullSecrets).toEqual([
      { name: 'app-registry' },
      { name: 'byline-registry' },
      { name: 'mirror' },
    ]);
  });

  it('recognises its own output with the same annotations as already injected', () => {
    const { input, pod } = inject({ 'byline.dev/spool-size': '128Mi' }, { imagePullSecrets: ['byline-registry'] });
    expect(mutatePod({ ...input, pod: pod! })).toMatchObject({ outcome: 'skipped', reason: 'AlreadyInjected' });
  });
});
