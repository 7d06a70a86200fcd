// `skiff history <type>/<name> [-n ns]`: an object's recorded changes (apiserver/history.ts), read from
// /apis/history.skiff.io/v1 with the kubeconfig's credentials as kubectl would, printed oldest first:
// revision, time, user, verb, then a unified diff of the object's YAML.

import { parseArgs } from 'node:util';
import { configFromKubeconfig, KubeClient } from '../../node-agent/kube-client.ts';
import { RESOURCES } from '../machinery/resources.ts';
import type { ObjectHistoryEntry } from '../apiserver/history.ts';

interface Target {
  group: string;
  resource: string;
  namespaced: boolean;
}

interface DiscoveredResource {
  name: string;
  singularName?: string;
  namespaced: boolean;
  kind: string;
  shortNames?: string[];
}

const matches = (t: string, r: { resource: string; singular?: string; kind: string; shortNames?: string[] }) =>
  r.resource === t || r.singular === t || r.kind.toLowerCase() === t || !!r.shortNames?.includes(t);

/** What TYPE names: a built-in kind first, else what the server's discovery says (custom resources). */
async function resolveType(kube: KubeClient, type: string): Promise<Target> {
  const lower = type.toLowerCase();
  const dot = lower.indexOf('.');
  const name = dot < 0 ? lower : lower.slice(0, dot);
  const group = dot < 0 ? undefined : lower.slice(dot + 1);
  const builtIn = RESOURCES.find((r) => (group === undefined || r.group === group) && matches(name, r));
  if (builtIn) return { group: builtIn.group, resource: builtIn.resource, namespaced: builtIn.namespaced };
  const groups = await kube.get<{ groups: { name: string; preferredVersion: { groupVersion: string } }[] }>('/apis');
  for (const g of groups.groups) {
    if (group !== undefined && g.name !== group) continue;
    const list = await kube.get<{ resources: DiscoveredResource[] }>(`/apis/${g.preferredVersion.groupVersion}`);
    const r = list.resources.find((x) => !x.name.includes('/') && matches(name, { resource: x.name, singular: x.singularName, kind: x.kind, shortNames: x.shortNames }));
    if (r) return { group: g.name, resource: r.name, namespaced: r.namespaced };
  }
  throw new Error(`the server doesn't have a resource type "${type}"`);
}

/** One entry as printed: a header line, a note when changes before it went unrecorded, then its diff. */
export function formatEntry(e: ObjectHistoryEntry): string {
  const who = e.user ? `${e.user.username}${e.user.impersonatedBy ? ` (impersonated by ${e.user.impersonatedBy})` : ''}` : 'unknown';
  const verb = `${e.verb ?? e.operation}${e.subresource ? ` ${e.subresource}` : ''}`;
  const lines = [`revision ${e.revision}  ${e.time}  ${who}  ${verb}`];
  if (e.unrecordedBefore) lines.push('(a change before this one was not recorded or has expired: the diff spans it)');
  if (e.diffOmitted) lines.push('(diff not shown: the answer reached its size limit; ask for fewer entries with --limit)');
  return `${lines.join('\n')}\n${e.diff}`;
}

export async function history(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      namespace: { type: 'string', short: 'n' },
      limit: { type: 'string' },
      kubeconfig: { type: 'string', default: process.env.KUBECONFIG?.split(':')[0] || '.skiff/kubeconfig' },
    },
    allowPositionals: true,
    strict: true,
  });
  const arg = positionals[0];
  const slash = arg?.indexOf('/') ?? -1;
  if (positionals.length !== 1 || slash <= 0 || slash === arg!.length - 1) throw new Error('history needs one TYPE/NAME, e.g. skiff history deployment/web -n default');
  const kube = new KubeClient(configFromKubeconfig(values.kubeconfig!));
  try {
    const t = await resolveType(kube, arg!.slice(0, slash));
    const name = arg!.slice(slash + 1);
    const ns = values.namespace ?? 'default';
    const path = `/apis/history.skiff.io/v1/${t.namespaced ? `namespaces/${encodeURIComponent(ns)}/` : ''}${t.resource}${t.group ? `.${t.group}` : ''}/${encodeURIComponent(name)}${values.limit ? `?limit=${encodeURIComponent(values.limit)}` : ''}`;
    const h = await kube.get<{ entries: ObjectHistoryEntry[]; message?: string }>(path);
    const what = `${t.resource}${t.group ? `.${t.group}` : ''}/${name}${t.namespaced ? ` in ${ns}` : ''}`;
    if (h.message) process.stdout.write(`${h.message}\n`);
    if (!h.entries.length) {
      process.stdout.write(`no recorded changes of ${what}\n`);
      return;
    }
    process.stdout.write(`${h.entries.length} recorded change${h.entries.length === 1 ? '' : 's'} of ${what}, oldest first\n\n`);
    process.stdout.write(h.entries.map(formatEntry).join('\n'));
  } finally {
    kube.close();
  }
}
