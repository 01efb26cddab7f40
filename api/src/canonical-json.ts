/**
 * RFC 8785 (JSON Canonicalization Scheme) for the values AuditEvents hold: object keys sorted by
 * UTF-16 code units, no white space, numbers and strings serialized as ECMAScript does.
 *
 * When every object's keys are already in sorted order, the engine's JSON.stringify produces
 * exactly that text, several times faster than sorting in JavaScript; the sidecar builds its
 * events in sorted key order to take that path, and anything else takes the general one.
 */
export function canonicalJson(value: unknown): string {
  return keysSorted(value) ? JSON.stringify(value) : sortedJson(value);
}

/** True when every object in `value` has its own keys in JCS order and holds only JSON values. */
function keysSorted(value: unknown): boolean {
  if (value === null) return true;
  const t = typeof value;
  if (t === 'string' || t === 'boolean') return true;
  if (t === 'number') return Number.isFinite(value as number);
  if (t !== 'object') return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!keysSorted(value[i])) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const obj = value as Record<string, unknown>;
  // Object.keys lists integer-like keys first in numeric order; the string comparison below
  // then fails for them unless that order happens to be the JCS order too.
  const keys = Object.keys(obj);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (i > 0 && !(keys[i - 1]! < k)) return false;
    const v = obj[k];
    if (v === undefined || !keysSorted(v)) return false;
  }
  return true;
}

function sortedJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value))
      throw new TypeError('JCS cannot encode a non-finite number');
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
      throw new TypeError(`JCS cannot encode a ${typeof value}`);
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return sortedJson(JSON.parse(JSON.stringify(value)));
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson(obj[k])}`).join(',')}}`;
}
