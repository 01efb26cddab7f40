import { describe, expect, test } from 'vitest';
import { PauseReason, ReadGate } from './flow-control.js';

/** Counts calls, as a net.Socket would receive them. */
function socket() {
  const calls: string[] = [];
  return { calls, pause: () => calls.push('pause'), resume: () => calls.push('resume') };
}

describe('ReadGate: a side resumes only when no reason to pause it is left', () => {
  test('a client drain (backpressure released) does not resume an upstream paused for an fsync', () => {
    const s = socket();
    const gate = new ReadGate(s);
    gate.pause(PauseReason.durability);
    gate.pause(PauseReason.backpressure);
    gate.release(PauseReason.backpressure);
    expect(gate.paused).toBe(true);
    expect(gate.pausedFor(PauseReason.durability)).toBe(true);
    expect(s.calls).toEqual(['pause']);
    gate.release(PauseReason.durability);
    expect(gate.paused).toBe(false);
    expect(s.calls).toEqual(['pause', 'resume']);
  });

  test('the other order too: the fsync completing does not resume a side still under backpressure', () => {
    const s = socket();
    const gate = new ReadGate(s);
    gate.pause(PauseReason.backpressure);
    gate.pause(PauseReason.durability);
    gate.release(PauseReason.durability);
    expect(s.calls).toEqual(['pause']);
    gate.release(PauseReason.backpressure);
    expect(s.calls).toEqual(['pause', 'resume']);
  });

  test('releasing a reason that was not set, or setting one twice, changes nothing', () => {
    const s = socket();
    const gate = new ReadGate(s);
    gate.release(PauseReason.backpressure);
    expect(s.calls).toEqual([]);
    gate.pause(PauseReason.durability);
    gate.pause(PauseReason.durability);
    gate.release(PauseReason.backpressure);
    expect(s.calls).toEqual(['pause']);
    gate.release(PauseReason.durability);
    expect(s.calls).toEqual(['pause', 'resume']);
  });

  test('a new socket (TLS taking over) inherits the reasons in force', () => {
    const plain = socket();
    const tls = socket();
    const gate = new ReadGate(plain);
    gate.pause(PauseReason.backpressure);
    gate.retarget(tls);
    expect(tls.calls).toEqual(['pause']);
    gate.release(PauseReason.backpressure);
    expect(tls.calls).toEqual(['pause', 'resume']);
    expect(plain.calls).toEqual(['pause']);
  });
});
