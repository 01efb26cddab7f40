/** `byline approval request|list`, `byline approve`, `byline deny`: the build's entry point; the work is in ../approval.ts. */
export { decideApproval, listApprovals, requestApproval } from '../approval.js';
