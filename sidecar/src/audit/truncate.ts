/**
 * Keeps every statement event within MAX_EVENT_BYTES of canonical JSON, so the collector (whose
 * batch limit is at least 1 MiB) can always take it. Huge statement text and parameters are cut to
 * a prefix, and the original's UTF-8 length and SHA-256 are recorded in `statement.truncated`, so
 * the full text (still in Postgres's log, or the client's) can be matched to the event later.
 * Other fields that only a hostile or broken client makes huge (tags, tables, error text, names)
 * are shortened and listed in `truncated.others`.
 *
 * Budgets, in bytes of JSON (escapes included): text 384 KiB, parameters 256 KiB, tags and tables
 * 64 KiB each, and small caps on the rest; with the record of what was cut, well under
 * MAX_EVENT_BYTES (a test builds the worst case). Ordinary events take the cheap path: a few
 * length comparisons and no allocation.
 */
import { createHash } from 'node:crypto';
import type { AuditTruncation, UnchainedEvent } from '@byline/api';

export const TEXT_BUDGET = 384 * 1024;
export const PARAMS_BUDGET = 256 * 1024;
/** Parameters kept at most (a Bind may carry 65535); the rest are dropped and counted. */
export const MAX_PARAMS_KEPT = 500;
const MIN_PARAM_KEEP = 256;
const TAGS_BUDGET = 64 * 1024;
const TABLES_BUDGET = 64 * 1024;
const ERROR_BUDGET = 16 * 1024;
const TASK_BUDGET = 4 * 1024;
const NAME_BUDGET = 1024;
/** A JSON string never takes more than 6 bytes per UTF-16 code unit (`\uXXXX`). */
const WORST = 6;

/** Shortens `event` in place where needed (returns it for chaining calls). */
export function boundEvent(event: UnchainedEvent): UnchainedEvent {
  const st = event.statement;
  if (st === null || !mayExceed(event)) return event;
  const t: AuditTruncation = { others: [], params: null, text: null };

  const cut = prefixLength(st.text, TEXT_BUDGET);
  if (cut < st.text.length) {
    t.text = shortened(st.text);
    st.text = st.text.slice(0, cut);
  }
  if (st.params) st.params = boundParams(st.params, t);
  if (st.tables) st.tables = keepWithin(st.tables, TABLES_BUDGET, 'statement.tables', t);
  st.preparedName = capped(st.preparedName, NAME_BUDGET, 'statement.preparedName', t);
  event.session.applicationName = capped(event.session.applicationName, NAME_BUDGET, 'session.applicationName', t);
  if (event.result) event.result.error = capped(event.result.error, ERROR_BUDGET, 'result.error', t);
  const ctx = event.context;
  if (ctx) {
    ctx.task = capped(ctx.task, TASK_BUDGET, 'context.task', t);
    ctx.traceparent = capped(ctx.traceparent, TASK_BUDGET, 'context.traceparent', t);
    const keys = Object.keys(ctx.tags);
    let used = 2;
    let kept = 0;
    for (; kept < keys.length; kept++) {
      const k = keys[kept]!;
      const cost = jsonStringBytes(k) + jsonStringBytes(ctx.tags[k]!) + 2;
      if (used + cost > TAGS_BUDGET) break;
      used += cost;
    }
    if (kept < keys.length) {
      const tags: Record<string, string> = {};
      for (const k of keys.slice(0, kept)) tags[k] = ctx.tags[k]!;
      ctx.tags = tags;
      t.others.push(`context.tags: ${kept} of ${keys.length} kept`);
    }
  }
  if (t.text !== null || t.params !== null || t.others.length > 0) st.truncated = t;
  return event;
}

/** Could any field be over its budget? Lengths only: the common case allocates nothing. */
function mayExceed(e: UnchainedEvent): boolean {
  const st = e.statement!;
  if (st.text.length * WORST > TEXT_BUDGET) return true;
  if (st.params) {
    if (st.params.length > MAX_PARAMS_KEPT) return true;
    let n = 0;
    for (const p of st.params) if (p !== null) n += p.length + 3;
    if (n * WORST > PARAMS_BUDGET) return true;
  }
  if (st.tables) {
    let n = 0;
    for (const name of st.tables) n += name.length + 3;
    if (n * WORST > TABLES_BUDGET) return true;
  }
  if ((st.preparedName?.length ?? 0) * WORST > NAME_BUDGET) return true;
  if ((e.session.applicationName?.length ?? 0) * WORST > NAME_BUDGET) return true;
  if ((e.result?.error?.length ?? 0) * WORST > ERROR_BUDGET) return true;
  const ctx = e.context;
  if (ctx) {
    if ((ctx.task?.length ?? 0) * WORST > TASK_BUDGET) return true;
    if ((ctx.traceparent?.length ?? 0) * WORST > TASK_BUDGET) return true;
    let n = 0;
    for (const k in ctx.tags) n += k.length + ctx.tags[k]!.length + 6;
    if (n * WORST > TAGS_BUDGET) return true;
  }
  return false;
}

function boundParams(params: (string | null)[], t: AuditTruncation): (string | null)[] {
  const kept = params.length > MAX_PARAMS_KEPT ? params.slice(0, MAX_PARAMS_KEPT) : params;
  if (kept.length < params.length) t.others.push(`statement.params: ${kept.length} of ${params.length} kept`);
  // An equal share each, so one huge value does not crowd out the others.
  const share = Math.max(MIN_PARAM_KEEP, Math.floor(PARAMS_BUDGET / Math.max(1, kept.length)) - 8);
  for (let i = 0; i < kept.length; i++) {
    const v = kept[i];
    if (v === null || v === undefined) continue;
    const cut = prefixLength(v, share);
    if (cut < v.length) {
      t.params ??= [];
      t.params.push({ bytes: Buffer.byteLength(v, 'utf8'), index: i, sha256: sha256(v) });
      kept[i] = v.slice(0, cut);
    }
  }
  return kept;
}

/** The leading entries that fit in `budget` bytes of JSON; notes the cut in `t.others`. */
function keepWithin(values: string[], budget: number, field: string, t: AuditTruncation): string[] {
  let used = 2;
  let n = 0;
  for (; n < values.length; n++) {
    const v = values[n]!;
    const room = budget - used - 1;
    if (prefixLength(v, room) < v.length) break;
    used += jsonStringBytes(v) + 1;
  }
  if (n === values.length) return values;
  t.others.push(`${field}: ${n} of ${values.length} kept`);
  return values.slice(0, n);
}

function capped(value: string | null, budget: number, field: string, t: AuditTruncation): string | null {
  if (value === null) return null;
  const cut = prefixLength(value, budget);
  if (cut === value.length) return value;
  t.others.push(`${field}: ${Buffer.byteLength(value, 'utf8')} bytes cut to a prefix`);
  return value.slice(0, cut);
}

function shortened(s: string) {
  return { bytes: Buffer.byteLength(s, 'utf8'), sha256: sha256(s) };
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** Bytes `s` takes as a JSON string, quotes included (JSON.stringify's escaping, as UTF-8). */
export function jsonStringBytes(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && isLow(s.charCodeAt(i + 1));
    n += pair ? 4 : charCost(c);
    if (pair) i++;
  }
  return n;
}

/**
 * The length of the longest prefix of `s` whose JSON string (quotes included) fits in `budget`
 * bytes; `s.length` when all of it fits. Never splits a surrogate pair.
 */
export function prefixLength(s: string, budget: number): number {
  if ((s.length + 2) * WORST <= budget) return s.length;
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && isLow(s.charCodeAt(i + 1));
    const cost = pair ? 4 : charCost(c);
    if (n + cost > budget) return i;
    n += cost;
    if (pair) i++;
  }
  return s.length;
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

function charCost(c: number): number {
  if (c === 0x22 || c === 0x5c || c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d) return 2;
  if (c < 0x20) return 6;
  if (c < 0x80) return 1;
  if (c < 0x800) return 2;
  if (c >= 0xd800 && c <= 0xdfff) return 6; // a lone surrogate: JSON.stringify writes \udxxx
  return 3;
}
