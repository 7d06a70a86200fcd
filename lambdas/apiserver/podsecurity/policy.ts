// Pod Security levels and a namespace's policy (kube's pod-security-admission/api: helpers.go,
// constants.go) and the evaluator (policy/registry.go, checks.go).
//
// Versions: the labels accept "latest" and any "v1.<minor>" as kube does, and the version is echoed in
// messages ("restricted:v1.32"), but every version is evaluated with the 1.32 (latest) checks: Skiff
// does not keep the older revisions of a check (none of them differ for pods Skiff can run).

import { ErrorList, fieldErrorBody } from '../../machinery/validation.ts';
import type { StatusCause } from '../../machinery/status.ts';
import { BASELINE_CHECKS, OVERLAPPING_BASELINE_CHECKS } from './baseline.ts';
import { RESTRICTED_CHECKS } from './restricted.ts';
import type { CheckResult } from './checks.ts';

type Obj = Record<string, any>;

export type Level = 'privileged' | 'baseline' | 'restricted';
const LEVELS: Level[] = ['privileged', 'baseline', 'restricted'];

export interface LevelVersion {
  level: Level;
  /** "latest" or "v1.<minor>". */
  version: string;
}

export interface Policy {
  enforce: LevelVersion;
  audit: LevelVersion;
  warn: LevelVersion;
}

export const LABEL_PREFIX = 'pod-security.kubernetes.io/';
export const ENFORCE_LABEL = `${LABEL_PREFIX}enforce`;
export const AUDIT_LABEL = `${LABEL_PREFIX}audit`;
export const WARN_LABEL = `${LABEL_PREFIX}warn`;
/** Audit annotations are kube's, under the plugin's prefix (AuditAnnotationPrefix). */
export const AUDIT_VIOLATIONS_ANNOTATION = `${LABEL_PREFIX}audit-violations`;
export const AUDIT_ERROR_ANNOTATION = `${LABEL_PREFIX}error`;
export const ENFORCE_POLICY_ANNOTATION = `${LABEL_PREFIX}enforce-policy`;

/** kube-apiserver's default PodSecurityConfiguration: everything privileged at latest, nothing exempt. */
export const DEFAULT_POLICY: Policy = {
  enforce: { level: 'privileged', version: 'latest' },
  audit: { level: 'privileged', version: 'latest' },
  warn: { level: 'privileged', version: 'latest' },
};

export function levelVersionString(lv: LevelVersion): string {
  return `${lv.level}:${lv.version}`;
}

const VERSION = /^v1\.([0-9]|[1-9][0-9]*)$/;

/**
 * PolicyToEvaluate: the namespace's labels over the defaults. A usable policy always comes back; a bad
 * level enforces "restricted" (fails closed) but audits and warns "privileged" (fails open), a bad
 * version is "latest". The errors are kube's field errors on metadata.labels[...].
 */
export function policyToEvaluate(labels: Record<string, string> | undefined, defaults: Policy = DEFAULT_POLICY): { policy: Policy; errors: StatusCause[] } {
  const p: Policy = { enforce: { ...defaults.enforce }, audit: { ...defaults.audit }, warn: { ...defaults.warn } };
  const errs = new ErrorList();
  if (!labels) return { policy: p, errors: [] };
  for (const mode of ['enforce', 'audit', 'warn'] as const) {
    const key = `${LABEL_PREFIX}${mode}`;
    const level = labels[key];
    if (level !== undefined) {
      if ((LEVELS as string[]).includes(level)) p[mode].level = level as Level;
      else {
        p[mode].level = mode === 'enforce' ? 'restricted' : 'privileged';
        errs.invalid(`metadata.labels[${key}]`, level, `must be one of ${LEVELS.join(', ')}`);
      }
    }
    const version = labels[`${key}-version`];
    if (version !== undefined) {
      if (version === 'latest' || VERSION.test(version)) p[mode].version = version;
      else {
        p[mode].version = 'latest';
        errs.invalid(`metadata.labels[${key}-version]`, version, 'must be "latest" or "v1.x"');
      }
    }
  }
  return { policy: p, errors: errs.list.map((e) => ({ reason: e.type, message: fieldErrorBody(e), field: e.field })) };
}

/** CompareLevels: -1, 0 or 1 by strictness. */
export function compareLevels(a: Level, b: Level): number {
  return Math.sign(LEVELS.indexOf(a) - LEVELS.indexOf(b));
}

export interface AggregateResult {
  allowed: boolean;
  reasons: string[];
  details: string[];
}

/** EvaluatePod + AggregateCheckResults: the failed checks of a level, in kube's order. */
export function evaluatePod(lv: LevelVersion, meta: Obj, spec: Obj): AggregateResult {
  if (lv.level === 'privileged') return { allowed: true, reasons: [], details: [] };
  const checks = lv.level === 'baseline' ? [...BASELINE_CHECKS, ...OVERLAPPING_BASELINE_CHECKS] : [...BASELINE_CHECKS, ...RESTRICTED_CHECKS];
  const failed: CheckResult[] = checks.map((c) => c(meta ?? {}, spec ?? {})).filter((r) => !r.allowed);
  return {
    allowed: failed.length === 0,
    reasons: failed.map((r) => r.forbiddenReason || 'unknown forbidden reason'),
    details: failed.map((r) => r.forbiddenDetail ?? ''),
  };
}

/** ForbiddenReason(): the reasons alone ("host namespaces, privileged"). */
export function forbiddenReason(r: AggregateResult): string {
  return r.reasons.join(', ');
}

/** ForbiddenDetail(): each reason with its detail in parentheses. */
export function forbiddenDetail(r: AggregateResult): string {
  return r.reasons.map((reason, i) => (r.details[i] ? `${reason} (${r.details[i]})` : reason)).join(', ');
}
