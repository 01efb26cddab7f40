/**
 * The names and paths the injector writes into pods. They are public interface: the sidecar config,
 * the collector (token audience) and users' RBAC and policies refer to them.
 */

/** Namespace label that enables injection. */
export const INJECTION_LABEL = 'byline.dev/injection';
export const INJECTION_LABEL_VALUE = 'enabled';
/**
 * The stricter value of the same label: pods running as a service account an AgentIdentity claims
 * are injected whether or not they ask (and refused when they cannot be).
 */
export const INJECTION_REQUIRED_VALUE = 'required';
/** Pod annotation that asks for injection ("true"). */
export const INJECT_ANNOTATION = 'byline.dev/inject';
/** Pod annotation recording what was injected: JSON `{ identity, routes, version }`. */
export const INJECTED_ANNOTATION = 'byline.dev/injected';
/** Pod annotation that accepts `shareProcessNamespace: true` (the app could then read the sidecar's files). */
/**
 * "true": the sidecar takes any client user name (for agents whose user name is baked in); without
 * it, only the route's role, which the webhook puts in the agent's DATABASE_URL (and env.user).
 */
export const ACCEPT_ANY_USER_ANNOTATION = 'byline.dev/accept-any-user';
export const ALLOW_SHARED_PROCESS_NAMESPACE_ANNOTATION = 'byline.dev/allow-shared-process-namespace';
export const INJECTED_ANNOTATION_VERSION = 1;
/** Pod annotation naming a PersistentVolumeClaim to hold the spool instead of an emptyDir. */
export const SPOOL_VOLUME_ANNOTATION = 'byline.dev/spool-volume';
/**
 * A spool's claim must be named with this prefix, so that the webhook can tell a spool by its claim
 * and refuse every other volume of it, in any pod of the namespace.
 */
export const SPOOL_CLAIM_PREFIX = 'byline-spool-';

export const SIDECAR_NAME = 'byline-proxy';
export const DEFAULT_SIDECAR_IMAGE = 'ghcr.io/byline-dev/byline:0.1.0';
export const SIDECAR_CONFIG_ENV = 'BYLINE_SIDECAR_CONFIG';
export const TOKEN_AUDIENCE = 'byline.dev';
export const TOKEN_EXPIRATION_SECONDS = 3600;
export const METRICS_PORT = 9187;
export const DEFAULT_SERVICE_ACCOUNT = 'default';

export const TOKEN_VOLUME = 'byline-token';
export const TOKEN_DIR = '/var/run/byline/token';
export const TOKEN_PATH = `${TOKEN_DIR}/token`;
export const SPOOL_VOLUME = 'byline-spool';
export const SPOOL_DIR = '/var/spool/byline';
export const TMP_VOLUME = 'byline-tmp';
/** Every volume the injector adds starts with this; a pod may not bring volumes of that name. */
export const RESERVED_VOLUME_PREFIX = 'byline-';
export const routeVolume = (route: string) => `byline-route-${route}`;
export const routeDir = (route: string) => `/var/run/byline/routes/${route}`;
export const caVolume = (route: string) => `byline-ca-${route}`;
export const caDir = (route: string) => `/var/run/byline/ca/${route}`;

/** A route name must fit `byline-route-<name>` into a 63-character DNS label (volume names are labels). */
export const MAX_ROUTE_NAME_LENGTH = 63 - 'byline-route-'.length;
/** The address app containers reach the sidecar on; it never listens beyond the pod's loopback. */
export const LOOPBACK = '127.0.0.1';
