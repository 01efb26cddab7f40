/**
 * `byline approval request|list`, `byline approve NAME`, `byline deny NAME`: Approvals through the
 * user's kubeconfig. The CLI only asks; the operator's webhook stamps who asked and who decided, and
 * checks that the decider holds the approve verb and is not the requester.
 */
import {
  type Approval,
  type ApprovalPhase,
  type ApprovalSpec,
  type GuardedClass,
  STATEMENT_CLASSES,
  TABLE_PATTERN_REGEX,
} from '@byline/api';
import { OPERAND, type OptionValues, UsageError } from './command-table.js';

const API = '/apis/byline.dev/v1alpha1';
const DURATION = /^([0-9]{1,4}h)?([0-9]{1,5}m)?([0-9]{1,6}s)?$/;

/** What every approval command takes to reach the API server (see the `approval` entries in commands.ts). */
type ConnectValues = { kubeconfig?: string; namespace?: string };

/** What `approval request` creates, from its arguments (pure, so the checks are tested without a cluster). */
export function requestedApproval(values: {
  identity?: string;
  route?: string;
  scope?: string[];
  table?: string[];
  reason?: string;
  ticket?: string;
  for?: string;
  until?: string;
  name?: string;
}): Pick<Approval, 'apiVersion' | 'kind' | 'metadata' | 'spec'> {
  const missing = (['identity', 'route', 'reason'] as const).filter((k) => !values[k]);
  if (missing.length > 0) throw new UsageError(missing.map((k) => `--${k} is required`).join('; '));
  const classes = (values.scope ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = classes.filter((c) => !(STATEMENT_CLASSES as readonly string[]).includes(c));
  if (unknown.length > 0)
    throw new UsageError(
      `--scope: unknown class ${unknown.map((c) => `"${c}"`).join(', ')} (classes: ${STATEMENT_CLASSES.join(', ')})`,
    );
  const tables = values.table ?? [];
  const pattern = new RegExp(TABLE_PATTERN_REGEX);
  const bad = tables.filter((t) => !pattern.test(t));
  if (bad.length > 0)
    throw new UsageError(`--table: ${bad.map((t) => `"${t}"`).join(', ')} is not a table pattern like public.payroll*`);
  if (classes.length === 0 && tables.length === 0) throw new UsageError('give --scope CLASSES and/or --table PATTERN');
  if ((values.for === undefined) === (values.until === undefined))
    throw new UsageError('give --for DURATION or --until TIME (exactly one)');
  if (values.for !== undefined && (!DURATION.test(values.for) || values.for === ''))
    throw new UsageError(`--for: expected a duration like 2h, 30m or 1h30m, got "${values.for}"`);
  if (values.until !== undefined && Number.isNaN(Date.parse(values.until)))
    throw new UsageError(`--until: expected an RFC 3339 time, got "${values.until}"`);
  const spec: ApprovalSpec = {
    identity: values.identity!,
    route: values.route!,
    scope: {
      ...(classes.length > 0 ? { classes: [...new Set(classes)] as GuardedClass[] } : {}),
      ...(tables.length > 0 ? { tables: [...new Set(tables)] } : {}),
    },
    reason: values.reason!,
    ...(values.ticket ? { ticket: values.ticket } : {}),
    ...(values.for !== undefined ? { duration: values.for } : {}),
    ...(values.until !== undefined ? { notAfter: new Date(values.until).toISOString().replace(/\.000Z$/, 'Z') } : {}),
  };
  return {
    apiVersion: 'byline.dev/v1alpha1',
    kind: 'Approval',
    metadata: values.name ? { name: values.name } : ({ generateName: `${values.identity}-` } as never),
    spec,
  };
}

/** The table `approval list` prints. */
export function approvalTable(items: Approval[], withNamespace: boolean): string {
  const rows = items.map((a) => [
    ...(withNamespace ? [a.metadata.namespace ?? ''] : []),
    a.metadata.name,
    a.spec.identity,
    a.spec.route,
    [...(a.spec.scope.classes ?? []), ...(a.spec.scope.tables ?? [])].join(','),
    a.status?.phase ?? 'Pending',
    a.spec.requestedBy ?? '',
    a.status?.approvedBy ?? a.status?.deniedBy ?? '',
    a.status?.expiresAt ?? '',
    a.spec.ticket ?? '',
    a.spec.reason,
  ]);
  const header = [
    ...(withNamespace ? ['NAMESPACE'] : []),
    'NAME',
    'IDENTITY',
    'ROUTE',
    'SCOPE',
    'PHASE',
    'REQUESTED BY',
    'DECIDED BY',
    'EXPIRES',
    'TICKET',
    'REASON',
  ];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return `${all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')}\n`;
}

interface Kube {
  namespace: string;
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  close(): void;
}

async function connect(values: { kubeconfig?: string; namespace?: string }): Promise<Kube> {
  // Loaded only here: the Kubernetes client is not needed by the other commands.
  const { KubeClient, KubeError, loadKubeConfig } = await import('@byline/operator');
  const config = await loadKubeConfig(values.kubeconfig);
  const context = config.getContextObject(config.getCurrentContext());
  const client = new KubeClient(config);
  return {
    namespace: values.namespace ?? context?.namespace ?? 'default',
    request: async <T>(method: string, path: string, body?: unknown) => {
      try {
        return await client.request<T>(method, path, body, method === 'PATCH' ? { patch: 'merge' } : {});
      } catch (err) {
        // The API server's own sentence (a webhook's refusal, a schema error) is what the user needs.
        const message = err instanceof KubeError ? (err.body as { message?: string } | undefined)?.message : undefined;
        throw new Error(message ?? (err as Error).message);
      }
    },
    close: () => client.close(),
  };
}

/** `byline approval request`: creates the Approval; the webhook stamps who asked. */
export async function requestApproval(
  values: OptionValues,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const body = requestedApproval(values as Parameters<typeof requestedApproval>[0]);
  const kube = await connect(values as ConnectValues);
  try {
    const created = await kube.request<Approval>('POST', `${API}/namespaces/${kube.namespace}/approvals`, body);
    out.write(
      `approval ${kube.namespace}/${created.metadata.name} requested by ${created.spec.requestedBy}: ` +
        `someone else with the approve permission runs \`byline approve ${created.metadata.name} -n ${kube.namespace}\`\n`,
    );
    return 0;
  } finally {
    kube.close();
  }
}

/** `byline approval list`. */
export async function listApprovals(
  values: OptionValues,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const kube = await connect(values as ConnectValues);
  try {
    const all = values['all-namespaces'] === true;
    const res = await kube.request<{ items: Approval[] }>(
      'GET',
      all ? `${API}/approvals` : `${API}/namespaces/${kube.namespace}/approvals`,
    );
    const items = res.items.filter((a) => !values.pending || (a.status?.phase ?? 'Pending') === 'Pending');
    if (items.length === 0) {
      out.write(`no ${values.pending ? 'pending ' : ''}approvals${all ? '' : ` in namespace ${kube.namespace}`}\n`);
      return 0;
    }
    out.write(approvalTable(items, all));
    return 0;
  } finally {
    kube.close();
  }
}

/** `byline approve NAME` and `byline deny NAME`: a status write the webhook checks and stamps. */
export async function decideApproval(
  phase: Extract<ApprovalPhase, 'Approved' | 'Denied'>,
  values: OptionValues,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const name = values[OPERAND] as string;
  const kube = await connect(values as ConnectValues);
  try {
    const updated = await kube.request<Approval>(
      'PATCH',
      `${API}/namespaces/${kube.namespace}/approvals/${encodeURIComponent(name)}/status`,
      { status: { phase, ...(values.reason ? { decisionReason: values.reason } : {}) } },
    );
    const s = updated.status ?? {};
    out.write(
      phase === 'Approved'
        ? `approval ${kube.namespace}/${name} approved by ${s.approvedBy} until ${s.expiresAt}\n`
        : `approval ${kube.namespace}/${name} denied by ${s.deniedBy}\n`,
    );
    return 0;
  } finally {
    kube.close();
  }
}
