/**
 * The CA an https collector is trusted by: inline (caPem, what the operator injects) or read from
 * caFile; neither means the system's trust store. Read once per request or agent, so a rotated
 * caFile takes effect without a restart.
 */
import { readFileSync } from 'node:fs';

export interface CollectorTrust {
  caFile?: string;
  caPem?: string;
}

export type CaResult = { ca: string | Buffer | undefined } | { error: string };

export function collectorCa(trust: CollectorTrust): CaResult {
  if (trust.caPem !== undefined) return { ca: trust.caPem };
  if (trust.caFile === undefined) return { ca: undefined };
  try {
    return { ca: readFileSync(trust.caFile) };
  } catch (e) {
    return { error: `cannot read ${trust.caFile}: ${(e as Error).message}` };
  }
}

/** The trust fields of a config object, only those given (for exactOptionalPropertyTypes). */
export function trustOf(trust: CollectorTrust): CollectorTrust {
  return {
    ...(trust.caFile !== undefined ? { caFile: trust.caFile } : {}),
    ...(trust.caPem !== undefined ? { caPem: trust.caPem } : {}),
  };
}
