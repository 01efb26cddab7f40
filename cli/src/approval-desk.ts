/**
 * `byline demo`'s stand-in for the API server's part in approvals, with no cluster: it keeps the
 * Approval objects and runs every request and decision through the operator's real admission code
 * (operator/src/approval/admission.ts), so the demo shows the rules as they are in a cluster —
 * requestedBy and approvedBy stamped by Byline from the user, never from the object, nobody
 * approving their own request, approving only for holders of the approve permission.
 *
 * What it cannot give: authentication. In a cluster the API server authenticates the user and the
 * webhook reads it from AdmissionReview.userInfo; here the demo says who is acting, so who approved
 * is only as trustworthy as the process running the demo.
 */
import type { Approval, crds } from '@byline/api';
import { admitApproval } from '@byline/operator';

export interface DeskOptions {
  namespace: string;
  identities: crds.AgentIdentity[];
  /** Users the demo grants the approve verb on approvals.byline.dev (what a SubjectAccessReview would answer). */
  approvers: ReadonlySet<string>;
  now?: () => Date;
}

export class ApprovalDesk {
  readonly #approvals = new Map<string, Approval>();
  #serial = 0;

  constructor(private readonly options: DeskOptions) {}

  get approvals(): Approval[] {
    return [...this.#approvals.values()];
  }

  /** A CREATE by `user` (what `byline approval request` sends); throws with the webhook's message when refused. */
  async request(user: string, object: Pick<Approval, 'apiVersion' | 'kind' | 'metadata' | 'spec'>): Promise<Approval> {
    const name = object.metadata.name ?? `${object.spec.identity}-${++this.#serial}`;
    const created = { ...object, metadata: { name, namespace: this.options.namespace } } as Approval;
    const admitted = await this.#admit('CREATE', '', user, created);
    this.#approvals.set(name, admitted);
    return admitted;
  }

  /** A status write of phase Approved by `user` (what `byline approve NAME` sends); throws when refused. */
  async approve(user: string, name: string, reason?: string): Promise<Approval> {
    const stored = this.#approvals.get(name);
    if (!stored) throw new Error(`approval "${name}" not found`);
    const object = {
      ...stored,
      status: { ...(stored.status ?? {}), phase: 'Approved', ...(reason ? { decisionReason: reason } : {}) },
    } as Approval;
    const admitted = await this.#admit('UPDATE', 'status', user, object, stored);
    this.#approvals.set(name, admitted);
    return admitted;
  }

  async #admit(
    operation: 'CREATE' | 'UPDATE',
    subResource: string,
    username: string,
    object: Approval,
    oldObject?: Approval,
  ): Promise<Approval> {
    const { namespace, identities, approvers } = this.options;
    const answer = await admitApproval(
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `demo-${++this.#serial}`,
          kind: { group: 'byline.dev', version: 'v1alpha1', kind: 'Approval' },
          operation,
          ...(subResource ? { subResource } : {}),
          namespace,
          userInfo: { username },
          object,
          ...(oldObject ? { oldObject } : {}),
        },
      },
      {
        now: this.options.now ?? (() => new Date()),
        identity: async (ns, name) => identities.find((i) => i.metadata.namespace === ns && i.metadata.name === name),
        mayApprove: async (user) =>
          approvers.has(user.username)
            ? { allowed: true }
            : { allowed: false, reason: `${user.username} may not approve approvals.byline.dev` },
      },
    );
    const response = answer.response;
    if (!response.allowed) throw new Error(response.status?.message ?? 'refused');
    return applyPatch(object, response.patch);
  }
}

/** The webhook's JSONPatch (only `add` operations: it stamps fields). */
function applyPatch(object: Approval, patch: string | undefined): Approval {
  const out = structuredClone(object) as unknown as Record<string, unknown>;
  if (!patch) return out as unknown as Approval;
  const ops = JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as {
    op: string;
    path: string;
    value: unknown;
  }[];
  for (const op of ops) {
    if (op.op !== 'add' && op.op !== 'replace') throw new Error(`unexpected patch operation ${op.op}`);
    const tokens = op.path
      .split('/')
      .slice(1)
      .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
    let at = out;
    for (const t of tokens.slice(0, -1)) {
      if (typeof at[t] !== 'object' || at[t] === null) at[t] = {};
      at = at[t] as Record<string, unknown>;
    }
    at[tokens.at(-1)!] = op.value;
  }
  return out as unknown as Approval;
}

/**
 * The arguments of the `byline approval request …` command a denial's HINT gives, with its
 * placeholders filled in: what a person copies from the error. Throws when the hint has none.
 */
export function requestArgsFromHint(hint: string, fill: { reason: string; ticket: string }): string[] {
  const m = /byline approval request (.*?), and retry/.exec(hint);
  if (!m) throw new Error(`the hint names no approval request command: ${hint}`);
  const args: string[] = [];
  for (const t of m[1]!.matchAll(/"([^"]*)"|(\S+)/g)) args.push(t[1] ?? t[2]!);
  return args.map((a) => (a === '<why>' ? fill.reason : a === '<ticket>' ? fill.ticket : a));
}
