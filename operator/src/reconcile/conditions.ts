/**
 * Status conditions with metav1.Condition semantics: lastTransitionTime moves only when the status
 * (True/False/Unknown) flips; nothing is written at all when the computed status equals the stored
 * one, so a steady state costs no writes and triggers no watch events.
 */
import type { crds } from '@byline/api';

type Condition = crds.Condition;

export interface DesiredCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export interface ObjectStatus {
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface StatusUpdate {
  status: ObjectStatus;
  /** False when the stored status already says this: write nothing. */
  changed: boolean;
  /** The stored condition of that type before, if any. */
  previous?: Condition;
}

export function nextStatus(
  current: ObjectStatus | undefined,
  desired: DesiredCondition,
  generation: number | undefined,
  now: Date,
): StatusUpdate {
  const conditions = current?.conditions ?? [];
  const previous = conditions.find((c) => c.type === desired.type);
  const observedGeneration = generation ?? 0;
  const same =
    previous !== undefined &&
    previous.status === desired.status &&
    previous.reason === desired.reason &&
    previous.message === desired.message &&
    previous.observedGeneration === observedGeneration &&
    current?.observedGeneration === observedGeneration;
  if (same) return { status: current ?? {}, changed: false, previous };
  const lastTransitionTime =
    previous && previous.status === desired.status
      ? previous.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const condition: Condition = { ...desired, lastTransitionTime, observedGeneration };
  return {
    status: {
      observedGeneration,
      conditions: [...conditions.filter((c) => c.type !== desired.type), condition],
    },
    changed: true,
    ...(previous ? { previous } : {}),
  };
}
