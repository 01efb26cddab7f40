import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { V1EphemeralContainer, V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type AdmissionReviewResponse, admit, handleAdmissionHttp, type NamespaceLookup } from './admission.js';
import type { JsonPatchOperation } from './json-patch.js';
import type { InjectionInput } from './mutate.js';
import { applyPatch } from './testing.js';

const fixture = (name: string) =>
  parseYaml(
    readFileSync(fileURLToPath(new URL(`./testdata/${name}.input.yaml`, import.meta.url)), 'utf8'),
  ) as InjectionInput;

const input = fixture('inject-one-route');
const options = input.options;
const lookup: NamespaceLookup = (namespace) =>
  namespace === 'payments'
    ? { labels: input.namespace.labels, identities: input.identities, routes: input.routes }
    : undefined;

const UID = '705ab4f5-6393-11e8-b7cc-42010a800002';

function reviewOf(pod: unknown, request: Record<string, unknown> = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: UID,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      namespace: 'payments',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
      ...request,
    },
  };
}

const decode = (r: AdmissionReviewResponse) =>
  JSON.parse(Buffer.from(r.response.patch ?? '', 'base64').toString('utf8')) as JsonPatchOperation[];

describe('admit', () => {
  it('answers an injected pod with its JSON Patch, base64', () => {
    const { response, result } = admit(reviewOf(input.pod), lookup, options);
    expect(result?.outcome).toBe('injected');
    expect(response).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: UID, allowed: true, patchType: 'JSONPatch' },
    });
    expect(response.response.status).toBeUndefined();
    const patch = decode(response);
    expect(patch).toEqual(result?.patch);
    const pod = applyPatch(input.pod, patch);
    expect(pod.spec?.initContainers?.[0]?.name).toBe('byline-proxy');
  });

  it('injects a pod from generateName, without name or namespace in its metadata', () => {
    const pod = fixture('inject-generate-name').pod;
    expect(pod.metadata?.name).toBeUndefined();
    const { response, result } = admit(reviewOf(pod, { name: undefined }), lookup, options);
    expect(result?.reason).toBe('Injected');
    expect(response.response.allowed).toBe(true);
    expect(applyPatch(pod, decode(response)).metadata?.annotations?.['byline.dev/injected']).toContain(
      'billing-reconciler',
    );
  });

  it('takes the namespace from the pod when the request has none', () => {
    const pod: V1Pod = { ...input.pod, metadata: { ...input.pod.metadata, namespace: 'payments' } };
    expect(admit(reviewOf(pod, { namespace: undefined }), lookup, options).result?.reason).toBe('Injected');
  });

  it('allows a skipped pod unchanged', () => {
    const pod: V1Pod = { spec: { containers: [{ name: 'app', image: 'x' }] } };
    const { response, result } = admit(reviewOf(pod), lookup, options);
    expect(result?.reason).toBe('NotRequested');
    expect(response.response).toEqual({ uid: UID, allowed: true });
  });

  it('warns a pod that asks for injection in a namespace that is not enabled', () => {
    const off: NamespaceLookup = () => ({ labels: {}, identities: input.identities, routes: input.routes });
    const { response, result } = admit(reviewOf(input.pod), off, options);
    expect(result?.reason).toBe('NamespaceNotEnabled');
    expect(response.response.allowed).toBe(true);
    expect(response.response.patch).toBeUndefined();
    expect(response.response.warnings).toEqual([
      expect.stringMatching(/^byline: namespace "payments" is not labelled/),
    ]);
  });

  it('refuses with 403 Forbidden and a message that says why', () => {
    const pod: V1Pod = { ...input.pod, spec: { ...input.pod.spec!, serviceAccountName: 'nobody' } };
    const { response, result } = admit(reviewOf(pod), lookup, options);
    expect(result?.reason).toBe('NoIdentity');
    expect(response.response).toEqual({
      uid: UID,
      allowed: false,
      status: {
        code: 403,
        reason: 'Forbidden',
        message: `byline: ${result?.message}`,
      },
    });
    expect(response.response.status?.message).toMatch(/service account "nobody"/);
  });

  it('turns away a pod asking for injection in a namespace the operator does not know yet', () => {
    const { response, result } = admit(reviewOf(input.pod, { namespace: 'new-ns' }), lookup, options);
    expect(result).toBeNull();
    expect(response.response.allowed).toBe(false);
    expect(response.response.status).toMatchObject({ code: 503, message: expect.stringMatching(/^byline: .*new-ns/) });
  });

  it('turns away a pod that does not ask, too, in a namespace it does not know (it may be `required`)', () => {
    const pod: V1Pod = { spec: { containers: [{ name: 'app', image: 'x' }] } };
    const { response, result } = admit(reviewOf(pod, { namespace: 'new-ns' }), lookup, options);
    expect(result).toBeNull();
    expect(response.response.allowed).toBe(false);
    expect(response.response.status).toMatchObject({ code: 503, message: expect.stringMatching(/new-ns/) });
  });

  it('answers 500 when the lookup throws, without throwing', () => {
    const broken: NamespaceLookup = () => {
      throw new Error('cache exploded');
    };
    const { response, result } = admit(reviewOf(input.pod), broken, options);
    expect(result).toBeNull();
    expect(response.response).toMatchObject({
      uid: UID,
      allowed: false,
      status: { code: 500, message: 'byline: injecting payments/billing-reconciler-0 failed: cache exploded' },
    });
  });

  const valid = reviewOf(input.pod);
  it.each([
    ['null', null, '', /expected an AdmissionReview object/],
    ['a string', 'hello', '', /expected an AdmissionReview object/],
    ['an array', [valid], '', /expected an AdmissionReview object/],
    ['admission.k8s.io/v1beta1', { ...valid, apiVersion: 'admission.k8s.io/v1beta1' }, UID, /apiVersion/],
    ['another kind', { ...valid, kind: 'TokenReview' }, UID, /kind AdmissionReview/],
    ['no request', { ...valid, request: undefined }, '', /no request/],
    ['no uid', reviewOf(input.pod, { uid: undefined }), '', /request\.uid/],
    ['a number uid', reviewOf(input.pod, { uid: 42 }), '', /request\.uid/],
    [
      'a Deployment',
      reviewOf(input.pod, { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }),
      UID,
      /pods \(v1 Pod\) and their ephemeralcontainers only/,
    ],
    ['no kind', reviewOf(input.pod, { kind: undefined }), UID, /pods \(v1 Pod\) and their ephemeralcontainers only/],
    ['another subresource', reviewOf(input.pod, { subResource: 'status' }), UID, /subresource "status"/],
    ['an UPDATE', reviewOf(input.pod, { operation: 'UPDATE' }), UID, /pods on CREATE only, got "UPDATE"/],
    [
      'a CREATE of ephemeralcontainers',
      reviewOf(input.pod, { subResource: 'ephemeralcontainers' }),
      UID,
      /pods\/ephemeralcontainers on UPDATE only, got "CREATE"/,
    ],
    [
      'an ephemeralcontainers UPDATE whose oldObject is not a pod',
      reviewOf(input.pod, { subResource: 'ephemeralcontainers', operation: 'UPDATE', oldObject: 'x' }),
      UID,
      /oldObject is not a pod/,
    ],
    ['no object', reviewOf(undefined), UID, /not a pod/],
    ['an object without spec', reviewOf({ metadata: {} }), UID, /not a pod/],
    ['containers not a list', reviewOf({ spec: { containers: {} } }), UID, /not a pod/],
    ['metadata not an object', reviewOf({ metadata: 'x', spec: { containers: [] } }), UID, /metadata/],
    [
      'annotations not an object',
      reviewOf({ metadata: { annotations: ['x'] }, spec: { containers: [] } }),
      UID,
      /annotations/,
    ],
    [
      'no namespace anywhere',
      reviewOf({ ...input.pod, metadata: { name: 'x' } }, { namespace: '' }),
      UID,
      /request\.namespace is missing/,
    ],
  ] as const)('refuses a malformed review: %s', (_, review, uid, message) => {
    const { response, result } = admit(review, lookup, options);
    expect(result).toBeNull();
    expect(response.apiVersion).toBe('admission.k8s.io/v1');
    expect(response.response.uid).toBe(uid);
    expect(response.response.allowed).toBe(false);
    expect(response.response.status?.code).toBe(400);
    expect(response.response.status?.reason).toBe('BadRequest');
    expect(response.response.status?.message).toMatch(/^byline: malformed AdmissionReview: /);
    expect(response.response.status?.message).toMatch(message);
  });

  it('never throws, whatever it is given', () => {
    const podish = fc.record(
      {
        metadata: fc.oneof(fc.anything(), fc.record({ annotations: fc.dictionary(fc.string(), fc.anything()) })),
        spec: fc.oneof(
          fc.anything(),
          fc.record({
            containers: fc.array(fc.anything()),
            initContainers: fc.anything(),
            shareProcessNamespace: fc.anything(),
          }),
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          podish.map((p) => reviewOf(p)),
          podish.map((p) => reviewOf({ ...input.pod, ...p })),
        ),
        (review) => {
          const { response } = admit(review, lookup, options);
          expect(typeof response.response.allowed).toBe('boolean');
          expect(typeof response.response.uid).toBe('string');
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('handleAdmissionHttp', () => {
  const body = (value: unknown) => Buffer.from(JSON.stringify(value));

  it('answers 200 with the AdmissionReview', () => {
    const answer = handleAdmissionHttp(body(reviewOf(input.pod)), 'application/json', lookup, options);
    expect(answer.status).toBe(200);
    expect(answer.result?.reason).toBe('Injected');
    const review = JSON.parse(answer.body) as AdmissionReviewResponse;
    expect(review.response).toMatchObject({ uid: UID, allowed: true, patchType: 'JSONPatch' });
  });

  it.each(['application/json; charset=utf-8', 'Application/JSON'])('accepts Content-Type %s', (type) => {
    expect(handleAdmissionHttp(body(reviewOf(input.pod)), type, lookup, options).status).toBe(200);
  });

  it.each([undefined, 'text/plain', 'application/yaml', 'application/jsonx'])(
    'answers 415 to Content-Type %s',
    (type) => {
      const answer = handleAdmissionHttp(body(reviewOf(input.pod)), type, lookup, options);
      expect(answer.status).toBe(415);
      expect(JSON.parse(answer.body).error).toMatch(/^byline: expected Content-Type application\/json/);
      expect(answer.result).toBeNull();
    },
  );

  it.each(['', '{"apiVersion":', 'not json', '\u00ff\u00fe'])('answers 400 to a body that is not JSON: %j', (text) => {
    const answer = handleAdmissionHttp(Buffer.from(text), 'application/json', lookup, options);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body).error).toMatch(/^byline: the body is not JSON/);
  });

  it('answers JSON that is not a review inside a review, allowed: false', () => {
    const answer = handleAdmissionHttp(body({ hello: 'world' }), 'application/json', lookup, options);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).response).toMatchObject({ allowed: false, status: { code: 400 } });
  });
});

describe('admit: pods/ephemeralcontainers UPDATE', () => {
  // The pod as stored after injection: the sidecar and its volumes are in it.
  const injected = (() => {
    const { response } = admit(reviewOf(input.pod), lookup, options);
    return applyPatch(input.pod, decode(response));
  })();
  const withEphemeral = (...ephemeralContainers: V1EphemeralContainer[]) => ({
    ...injected,
    spec: { ...injected.spec!, ephemeralContainers },
  });
  const update = (pod: V1Pod, oldPod: V1Pod = injected) =>
    admit(
      reviewOf(pod, { subResource: 'ephemeralcontainers', operation: 'UPDATE', oldObject: oldPod }),
      lookup,
      options,
    );

  it('allows a debug container that reaches nothing of the sidecar, unchanged', () => {
    const { response, result } = update(
      withEphemeral({ name: 'debug', image: 'busybox', targetContainerName: 'agent', stdin: true, tty: true }),
    );
    expect(result?.reason).toBe('EphemeralContainersAllowed');
    expect(response.response).toEqual({ uid: UID, allowed: true });
  });

  it.each([
    [
      'targeting byline-proxy',
      { name: 'debug', image: 'busybox', targetContainerName: 'byline-proxy' },
      'SidecarTargeted',
      /ephemeral container "debug" targets the byline-proxy container/,
    ],
    [
      "mounting the sidecar's token volume",
      { name: 'debug', image: 'busybox', volumeMounts: [{ name: 'byline-token', mountPath: '/t' }] },
      'SidecarVolumeMounted',
      /ephemeral container "debug" mounts volume "byline-token"/,
    ],
    [
      'mounting the route volume',
      { name: 'debug', image: 'busybox', volumeMounts: [{ name: 'byline-route-orders-db', mountPath: '/c' }] },
      'SidecarVolumeMounted',
      /"byline-route-orders-db"/,
    ],
    [
      "reading the route's Secret into its env",
      {
        name: 'debug',
        image: 'busybox',
        env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'orders-db-app', key: 'password' } } }],
      },
      'RouteSecretExposed',
      /reads PW from the Secret "orders-db-app"/,
    ],
  ] as const)('refuses one %s, with 403 and the reason', (_, container, reason, message) => {
    const { response, result } = update(withEphemeral(structuredClone(container) as V1EphemeralContainer));
    expect(result).toMatchObject({ outcome: 'refused', reason });
    expect(response.response.allowed).toBe(false);
    expect(response.response.status).toMatchObject({
      code: 403,
      reason: 'Forbidden',
      message: expect.stringMatching(message),
    });
  });

  it("judges the sidecar's volumes by what it mounts, not by their names", () => {
    // A pod injected by some other means (or renamed volumes): whatever byline-proxy mounts is guarded.
    const renamed = structuredClone(injected);
    renamed.spec!.volumes!.push({ name: 'creds-copy', emptyDir: {} });
    renamed.spec!.initContainers![0]!.volumeMounts!.push({ name: 'creds-copy', mountPath: '/copy' });
    const pod = {
      ...renamed,
      spec: {
        ...renamed.spec!,
        ephemeralContainers: [{ name: 'd', image: 'x', volumeMounts: [{ name: 'creds-copy', mountPath: '/c' }] }],
      },
    };
    expect(update(pod, renamed).result?.reason).toBe('SidecarVolumeMounted');
  });

  it("lets an ephemeral container mount the pod's API token, which the ServiceAccount plugin also gave byline-proxy", () => {
    const withToken = structuredClone(injected);
    withToken.spec!.volumes!.push({
      name: 'kube-api-access-abcde',
      projected: { sources: [{ serviceAccountToken: { path: 'token' } }] },
    });
    const mount = {
      name: 'kube-api-access-abcde',
      readOnly: true,
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
    };
    withToken.spec!.initContainers![0]!.volumeMounts!.push({ ...mount });
    const debug = {
      ...withToken,
      spec: { ...withToken.spec!, ephemeralContainers: [{ name: 'd', image: 'x', volumeMounts: [mount] }] },
    };
    expect(update(debug, withToken).result?.reason).toBe('EphemeralContainersAllowed');
    // The same volume under a writable mount in byline-proxy is no token mount: then it is the sidecar's.
    delete (withToken.spec!.initContainers![0]!.volumeMounts!.at(-1) as { readOnly?: boolean }).readOnly;
    expect(
      update({ ...debug, spec: { ...debug.spec, initContainers: withToken.spec!.initContainers } }, withToken).result
        ?.reason,
    ).toBe('SidecarVolumeMounted');
  });

  it('judges only the containers this update adds', () => {
    const old = withEphemeral({ name: 'old', image: 'x', targetContainerName: 'byline-proxy' });
    const both = withEphemeral(old.spec.ephemeralContainers[0]!, { name: 'new', image: 'x' });
    expect(update(both, old).result?.reason).toBe('EphemeralContainersAllowed');
    expect(update(both, injected).result?.reason).toBe('SidecarTargeted');
  });
});
