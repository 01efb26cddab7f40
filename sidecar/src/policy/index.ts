/**
 * The policy seam for the forward path. The session is expected to:
 *   1. at start, `await PolicyClient.start(...)` (Kubernetes) or `engine.setPolicy(...)` (static);
 *   2. per Query text and per Parse, `analyzer.analyze(text)`, keeping the result with the prepared
 *      statement so every Execute reuses it;
 *   3. before forwarding, `engine.decideAll(route, analysis, Date.now())`; on a denial, send
 *      `denialResponse(decision)` where Postgres would have put its error, forward nothing of the
 *      statement, and record `authz` from the decision (rule, approval).
 */
export { type Analysis, StatementAnalyzer, type StatementAnalyzerOptions } from './analyzer.js';
export { PolicyClient, type PolicyClientOptions } from './client.js';
export { denialResponse } from './denial.js';
export { DENIED_SQLSTATE, type Decision, PolicyEngine } from './engine.js';
export type { StatementFacts } from './facts.js';
