/**
 * A V8 .cpuprofile (`node --cpu-prof`) read for the bench's profile scripts: its nodes by id, each
 * node's parent, a frame's printable name (function and where, paths shortened) and the event-loop
 * callback a sample ran under (the frame just below the root).
 */
import { readFileSync } from 'node:fs';

export function readCpuProfile(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const name = (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${url.replace(/^.*\/(node_modules|cli\/dist|src)\//, '$1/')}:${lineNumber + 1}` : '';
    return `${functionName || '(anonymous)'} ${where}`.trim();
  };
  /** The frame just below (root): the event-loop callback that was running. */
  const entry = (node) => {
    let n = node;
    while (parent.has(n.id) && byId.get(parent.get(n.id)).callFrame.functionName !== '(root)')
      n = byId.get(parent.get(n.id));
    return name(n);
  };
  return { profile, byId, parent, name, entry };
}
