/**
 * The pod webhook's core: AdmissionReview in, AdmissionReview out, no sockets. Bad input gets a
 * clear answer, never an exception. Two requests reach it: a pod's CREATE (injection) and an UPDATE
 * of its ephemeralcontainers subresource (judged, never patched). TLS and the listening server live
 * in ../webhook.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { judgeEphemeralContainers } from './ephemeral.js';
import { mutatePod } from './mutate.js';
import type { AgentIdentity, DatabaseRoute, InjectionOptions, InjectionResult } from './types.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** What the operator's cache knows of a namespace; undefined when it does not know the namespace. */
export type NamespaceLookup = (
  namespace: string,
) => { labels: Record<string, string>; identities: AgentIdentity[]; routes: DatabaseRoute[] } | undefined;

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch. */
  patch?: string;
  status?: { code: number; reason: string; message: string };
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export interface Admission {
  response: AdmissionReviewResponse;
  /** The injector's decision; null when it was not reached (a malformed review, an unknown namespace). */
  result: InjectionResult | null;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function review(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

function deny(uid: string, code: number, reason: string, message: string): AdmissionReviewResponse {
  return review({ uid, allowed: false, status: { code, reason, message: `byline: ${message}` } });
}

interface Parsed {
  uid: string;
  namespace: string;
  pod: V1Pod;
  /** Set for an UPDATE of pods/ephemeralcontainers: the pod before it. */
  ephemeral?: { oldPod?: V1Pod };
}

/** What is wrong with the review, or the pieces admit needs. */
function parse(value: unknown): { uid: string; problem: string } | Parsed {
  if (!isRecord(value)) return { uid: '', problem: 'expected an AdmissionReview object' };
  const request = value.request;
  const uid = isRecord(request) && typeof request.uid === 'string' ? request.uid : '';
  const bad = (problem: string) => ({ uid, problem });
  if (value.apiVersion !== ADMISSION_API_VERSION || value.kind !== 'AdmissionReview') {
    return bad(
      `expected apiVersion ${ADMISSION_API_VERSION} and kind AdmissionReview, got ${JSON.stringify(value.apiVersion)} and ${JSON.stringify(value.kind)}`,
    );
  }
  if (!isRecord(request)) return bad('the AdmissionReview has no request');
  if (uid === '') return bad('request.uid is missing');
  const kind = isRecord(request.kind) ? request.kind : {};
  const subResource = request.subResource ?? '';
  if (
    kind.group !== '' ||
    kind.version !== 'v1' ||
    kind.kind !== 'Pod' ||
    (subResource !== '' && subResource !== 'ephemeralcontainers')
  ) {
    return bad(
      `this webhook handles pods (v1 Pod) and their ephemeralcontainers only, got ${JSON.stringify(request.kind)}${subResource ? ` subresource ${JSON.stringify(subResource)}` : ''}; check the MutatingWebhookConfiguration's rules`,
    );
  }
  const expected = subResource === '' ? 'CREATE' : 'UPDATE';
  if (request.operation !== expected) {
    return bad(
      `this webhook handles ${subResource === '' ? 'pods' : 'pods/ephemeralcontainers'} on ${expected} only, got ${JSON.stringify(request.operation)}; check the MutatingWebhookConfiguration's rules`,
    );
  }
  const pod = request.object;
  if (!isRecord(pod) || !isRecord(pod.spec) || !Array.isArray(pod.spec.containers)) {
    return bad('request.object is not a pod with spec.containers');
  }
  if (pod.metadata !== undefined && !isRecord(pod.metadata)) return bad('request.object.metadata is not an object');
  const annotations = isRecord(pod.metadata) ? pod.metadata.annotations : undefined;
  if (annotations !== undefined && !isRecord(annotations)) return bad('metadata.annotations is not an object');
  // The request's namespace is authoritative: a pod's own metadata.namespace may be empty on CREATE.
  const namespace =
    typeof request.namespace === 'string' && request.namespace !== ''
      ? request.namespace
      : isRecord(pod.metadata) && typeof pod.metadata.namespace === 'string'
        ? pod.metadata.namespace
        : '';
  if (namespace === '') return bad('request.namespace is missing');
  if (subResource === '') return { uid, namespace, pod: pod as V1Pod };
  const old = request.oldObject;
  if (old !== undefined && old !== null && (!isRecord(old) || !isRecord(old.spec))) {
    return bad('request.oldObject is not a pod');
  }
  return { uid, namespace, pod: pod as V1Pod, ephemeral: isRecord(old) ? { oldPod: old as V1Pod } : {} };
}

/** How the pod is named in messages: pods from generateName have no name until they are stored. */
export function podLabel(pod: V1Pod, namespace: string): string {
  const name =
    pod.metadata?.name || (pod.metadata?.generateName ? `${pod.metadata.generateName}<generated>` : '<unnamed>');
  return `${namespace}/${name}`;
}

export function admit(value: unknown, lookup: NamespaceLookup, options: InjectionOptions): Admission {
  const parsed = parse(value);
  if ('problem' in parsed) {
    return {
      response: deny(parsed.uid, 400, 'BadRequest', `malformed AdmissionReview: ${parsed.problem}`),
      result: null,
    };
  }
  const { uid, namespace, pod } = parsed;
  try {
    const known = lookup(namespace);
    if (!known) {
      // Unknown to the cache (still syncing, or just created), although the API server sends only
      // pods of labelled namespaces: under `required` any pod may need the sidecar, and any pod may
      // name a route's Secret, so none is judged blind. Turned away until the operator knows it.
      return {
        response: deny(
          uid,
          503,
          'ServiceUnavailable',
          `namespace "${namespace}" is not known to the operator yet; try again`,
        ),
        result: null,
      };
    }
    const result = parsed.ephemeral
      ? judgeEphemeralContainers({ pod, ...parsed.ephemeral, routes: known.routes })
      : mutatePod({
          pod,
          namespace: { name: namespace, labels: known.labels },
          identities: known.identities,
          routes: known.routes,
          options,
        });
    return { response: respond(uid, result), result };
  } catch (err) {
    return {
      response: deny(
        uid,
        500,
        'InternalError',
        `injecting ${podLabel(pod, namespace)} failed: ${(err as Error).message}`,
      ),
      result: null,
    };
  }
}

function respond(uid: string, result: InjectionResult): AdmissionReviewResponse {
  switch (result.outcome) {
    case 'injected':
      return review({
        uid,
        allowed: true,
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify(result.patch)).toString('base64'),
      });
    case 'refused':
      return deny(uid, 403, 'Forbidden', result.message);
    case 'skipped':
      // A pod that asked for injection and did not get it should hear why (kubectl prints warnings).
      return review({
        uid,
        allowed: true,
        ...(result.reason === 'NamespaceNotEnabled' ? { warnings: [`byline: ${result.message}`] } : {}),
      });
  }
}

export interface HttpAnswer {
  status: number;
  /** JSON: the AdmissionReview for 200, `{ error }` otherwise. */
  body: string;
  result: InjectionResult | null;
}

/** The HTTP layer's part: content type and body checks, then admit. */
export function handleAdmissionHttp(
  body: Buffer,
  contentType: string | undefined,
  lookup: NamespaceLookup,
  options: InjectionOptions,
): HttpAnswer {
  const error = (status: number, message: string): HttpAnswer => ({
    status,
    body: JSON.stringify({ error: `byline: ${message}` }),
    result: null,
  });
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    return error(415, `expected Content-Type application/json, got ${contentType ?? 'none'}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return error(400, `the body is not JSON: ${(err as Error).message}`);
  }
  const { response, result } = admit(value, lookup, options);
  return { status: 200, body: JSON.stringify(response), result };
}
