// HorizontalPodAutoscaler (issue #17 item 2): pkg/registry/autoscaling/horizontalpodautoscaler. Stored as
// autoscaling/v2 (the storage version, as kube-apiserver 1.32 keeps it) and served at autoscaling/v2 and
// autoscaling/v1, the v1 one converted at the store's edges (KindStrategy.conversion) the way
// pkg/apis/autoscaling/v1/conversion.go converts: v1's targetCPUUtilizationPercentage is a cpu Resource
// metric with an Utilization target; what v1 cannot say (other metrics, behavior, current metrics,
// conditions) travels in the autoscaling.alpha.kubernetes.io/* annotations, in the JSON kube writes there
// (v1's MetricSpec/MetricStatus: v2beta1's shapes; the behavior as the internal Go struct, with capitalized
// field names), so a read-modify-write through v1 loses nothing. Defaults are SetDefaults_
// HorizontalPodAutoscaler (v2), validation ValidateHorizontalPodAutoscaler, the table printers.go's
// printHorizontalPodAutoscaler. The controller is controllers/horizontal.ts.

import { ensureObject } from '../../machinery/defaulting.ts';
import { validateLabelSelector } from '../../machinery/metav1-validation.ts';
import { validateContainerResourceName } from '../../machinery/podspec-validation.ts';
import { parseQuantity } from '../../machinery/quantity.ts';
import { ageCol, col, doc, int, nameCol, since, str } from '../../machinery/table.ts';
import { isObject, type KubeObject } from '../../machinery/types.ts';
import { arr, dns1123LabelErrors, nameIsDNSSubdomain, obj, pathSegmentName, present, strOf, type ErrorList } from '../../machinery/validation.ts';
import { errors } from '../../machinery/status.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

export const AUTOSCALING = 'autoscaling';
const V2 = 'io.k8s.api.autoscaling.v2.';

// ---- defaults (pkg/apis/autoscaling/v2/defaults.go) ----

/** DefaultCPUUtilization: the target of an HPA that names no metric (v1's implicit one). */
export const DEFAULT_CPU_UTILIZATION = 80;

const defaultScaleUp = (): Obj => ({
  stabilizationWindowSeconds: 0,
  selectPolicy: 'Max',
  policies: [
    { type: 'Pods', value: 4, periodSeconds: 15 },
    { type: 'Percent', value: 100, periodSeconds: 15 },
  ],
});
// The scale-down window is left unset: the controller fills it from its --horizontal-pod-autoscaler-
// downscale-stabilization (300 s), which the API cannot know.
const defaultScaleDown = (): Obj => ({ selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] });

function copyScalingRules(from: unknown, to: Obj): Obj {
  if (!isObject(from)) return to;
  for (const k of ['selectPolicy', 'stabilizationWindowSeconds', 'policies']) if (present(from[k])) to[k] = from[k];
  return to;
}

/** SetDefaults_HorizontalPodAutoscaler: minReplicas 1, a cpu target of 80% when no metric, behavior filled when given. */
export function defaultHPA(o: Obj): void {
  const spec = ensureObject(o, 'spec');
  if (!present(spec.minReplicas)) spec.minReplicas = 1;
  if (!Array.isArray(spec.metrics) || spec.metrics.length === 0) {
    spec.metrics = [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: DEFAULT_CPU_UTILIZATION } } }];
  }
  if (isObject(spec.behavior)) {
    spec.behavior.scaleUp = copyScalingRules(spec.behavior.scaleUp, defaultScaleUp());
    spec.behavior.scaleDown = copyScalingRules(spec.behavior.scaleDown, defaultScaleDown());
  }
  // The status is a struct (never absent) whose desiredReplicas and currentMetrics have no omitempty: a new
  // HPA reads `status: {currentMetrics: null, desiredReplicas: 0}`, as from kube-apiserver.
  const status = ensureObject(o, 'status');
  if (status.currentMetrics === undefined) status.currentMetrics = null;
  if (!present(status.desiredReplicas)) status.desiredReplicas = 0;
}

// ---- validation (pkg/apis/autoscaling/validation/validation.go) ----

const MAX_PERIOD_SECONDS = 1800;
const MAX_STABILIZATION_WINDOW_SECONDS = 3600;
const METRIC_SOURCE_TYPES = ['ContainerResource', 'External', 'Object', 'Pods', 'Resource'];
const SOURCE_FIELD: Record<string, string> = { Object: 'object', Pods: 'pods', Resource: 'resource', External: 'external', ContainerResource: 'containerResource' };
const SELECT_POLICIES = ['Disabled', 'Max', 'Min'];
const POLICY_TYPES = ['Percent', 'Pods'];

function validateCrossVersionObjectReference(errs: ErrorList, ref: unknown, path: string): number {
  const before = errs.length;
  const r = obj(ref);
  for (const f of ['kind', 'name']) {
    const v = strOf(r[f]);
    if (!v) errs.required(`${path}.${f}`, '');
    else errs.each(`${path}.${f}`, v, pathSegmentName(v, false));
  }
  return errs.length - before;
}

function positive(errs: ErrorList, q: unknown, path: string): void {
  if (!present(q)) return;
  let v: number;
  try {
    v = parseQuantity(String(q));
  } catch {
    return; // the schema's decoding refuses a bad quantity before this
  }
  if (!(v > 0)) errs.invalid(path, q, 'must be positive');
}

function validateMetricTarget(errs: ErrorList, t: Obj, path: string): void {
  if (!strOf(t.type)) errs.required(`${path}.type`, 'must specify a metric target type');
  if (!['Utilization', 'Value', 'AverageValue'].includes(t.type)) errs.invalid(`${path}.type`, strOf(t.type), 'must be either Utilization, Value, or AverageValue');
  positive(errs, t.value, `${path}.value`);
  positive(errs, t.averageValue, `${path}.averageValue`);
  if (present(t.averageUtilization) && t.averageUtilization < 1) errs.invalid(`${path}.averageUtilization`, t.averageUtilization, 'must be greater than 0');
}

function validateMetricIdentifier(errs: ErrorList, id: Obj, path: string): void {
  const name = strOf(id.name);
  if (!name) errs.required(`${path}.name`, 'must specify a metric name');
  else errs.each(`${path}.name`, name, pathSegmentName(name, false));
  validateLabelSelector(errs, id.selector, `${path}.selector`);
}

function validateResourceSource(errs: ErrorList, src: Obj, path: string, container: boolean): void {
  const name = strOf(src.name);
  if (!name) errs.required(`${path}.name`, 'must specify a resource name');
  else validateContainerResourceName(errs, name, `${path}.name`);
  if (container) {
    const c = strOf(src.container);
    if (!c) errs.required(`${path}.container`, 'must specify a container');
    else errs.each(`${path}.container`, c, dns1123LabelErrors(c));
  }
  const t = obj(src.target);
  validateMetricTarget(errs, t, `${path}.target`);
  if (!present(t.averageUtilization) && !present(t.averageValue)) errs.required(`${path}.target.averageUtilization`, 'must set either a target raw value or a target utilization');
  if (present(t.averageUtilization) && present(t.averageValue)) errs.forbidden(`${path}.target.averageValue`, 'may not set both a target raw value and a target utilization');
}

function validateMetricSpec(errs: ErrorList, spec: Obj, path: string): void {
  const type = strOf(spec.type);
  if (!type) errs.required(`${path}.type`, 'must specify a metric source type');
  const present_ = Object.entries(SOURCE_FIELD).filter(([, f]) => present(spec[f]));
  // Only the first source present is validated (typesPresent.Len() == 1 as each is inserted).
  const [first] = present_;
  if (first) {
    const [, f] = first;
    const src = obj(spec[f]);
    const p = `${path}.${f}`;
    if (f === 'resource' || f === 'containerResource') validateResourceSource(errs, src, p, f === 'containerResource');
    else if (f === 'pods') {
      validateMetricIdentifier(errs, obj(src.metric), `${p}.metric`);
      const t = obj(src.target);
      validateMetricTarget(errs, t, `${p}.target`);
      if (!present(t.averageValue)) errs.required(`${p}.target.averageValue`, 'must specify a positive target averageValue');
    } else if (f === 'object') {
      validateCrossVersionObjectReference(errs, src.describedObject, `${p}.describedObject`);
      validateMetricIdentifier(errs, obj(src.metric), `${p}.metric`);
      const t = obj(src.target);
      validateMetricTarget(errs, t, `${p}.target`);
      if (!present(t.value) && !present(t.averageValue)) errs.required(`${p}.target.averageValue`, 'must set either a target value or averageValue');
    } else if (f === 'external') {
      validateMetricIdentifier(errs, obj(src.metric), `${p}.metric`);
      const t = obj(src.target);
      validateMetricTarget(errs, t, `${p}.target`);
      if (!present(t.value) && !present(t.averageValue)) errs.required(`${p}.target.averageValue`, 'must set either a target value for metric or a per-pod target');
      if (present(t.value) && present(t.averageValue)) errs.forbidden(`${p}.target.value`, 'may not set both a target value for metric and a per-pod target');
    }
  }
  const expected = SOURCE_FIELD[type];
  if (!expected) errs.notSupported(`${path}.type`, type, METRIC_SOURCE_TYPES);
  else if (!present(spec[expected])) errs.required(`${path}.${expected}`, 'must populate information for the given metric source');
  if (present_.length !== 1) {
    for (const [, f] of present_) if (f !== expected) errs.forbidden(`${path}.${f}`, 'must populate the given metric source only');
  }
}

function validateScalingRules(errs: ErrorList, rules: unknown, path: string): void {
  if (!isObject(rules)) return;
  const w = rules.stabilizationWindowSeconds;
  if (present(w) && w < 0) errs.invalid(`${path}.stabilizationWindowSeconds`, w, 'must be greater than or equal to zero');
  if (present(w) && w > MAX_STABILIZATION_WINDOW_SECONDS) errs.invalid(`${path}.stabilizationWindowSeconds`, w, `must be less than or equal to ${MAX_STABILIZATION_WINDOW_SECONDS}`);
  if (present(rules.selectPolicy) && !SELECT_POLICIES.includes(rules.selectPolicy)) errs.notSupported(`${path}.selectPolicy`, rules.selectPolicy, SELECT_POLICIES);
  const policies = arr(rules.policies);
  if (!policies.length) errs.required(`${path}.policies`, 'must specify at least one Policy');
  policies.forEach((p, i) => {
    const pp = `${path}.policies[${i}]`;
    const policy = obj(p);
    if (!POLICY_TYPES.includes(policy.type)) errs.notSupported(`${pp}.type`, strOf(policy.type), POLICY_TYPES);
    const value = typeof policy.value === 'number' ? policy.value : 0;
    const period = typeof policy.periodSeconds === 'number' ? policy.periodSeconds : 0;
    if (value <= 0) errs.invalid(`${pp}.value`, value, 'must be greater than zero');
    if (period <= 0) errs.invalid(`${pp}.periodSeconds`, period, 'must be greater than zero');
    if (period > MAX_PERIOD_SECONDS) errs.invalid(`${pp}.periodSeconds`, period, `must be less than or equal to ${MAX_PERIOD_SECONDS}`);
  });
}

/** validateHorizontalPodAutoscalerSpec (the HPAScaleToZero gate off: minReplicas >= 1). */
export function validateHPA(errs: ErrorList, o: Obj): void {
  const spec = obj(o.spec);
  const min = spec.minReplicas;
  const max = typeof spec.maxReplicas === 'number' ? spec.maxReplicas : 0;
  if (present(min) && min < 1) errs.invalid('spec.minReplicas', min, 'must be greater than or equal to 1');
  if (max < 1) errs.invalid('spec.maxReplicas', max, 'must be greater than 0');
  if (present(min) && max < min) errs.invalid('spec.maxReplicas', max, 'must be greater than or equal to `minReplicas`');
  // Each step only when the one before found nothing, as kube's else-ifs.
  if (validateCrossVersionObjectReference(errs, spec.scaleTargetRef, 'spec.scaleTargetRef')) return;
  const before = errs.length;
  arr(spec.metrics).forEach((m, i) => validateMetricSpec(errs, obj(m), `spec.metrics[${i}]`));
  if (errs.length > before) return;
  if (isObject(spec.behavior)) {
    validateScalingRules(errs, spec.behavior.scaleUp, 'spec.behavior.scaleUp');
    validateScalingRules(errs, spec.behavior.scaleDown, 'spec.behavior.scaleDown');
  }
}

/** ValidateHorizontalPodAutoscalerStatusUpdate: replica counts not negative, conditions well formed. */
function validateHPAStatus(errs: ErrorList, status: Obj): void {
  for (const f of ['currentReplicas', 'desiredReplicas']) {
    if (typeof status[f] === 'number' && status[f] < 0) errs.invalid(`status.${f}`, status[f], 'must be greater than or equal to 0');
  }
  for (const [i, c] of arr(status.conditions).entries()) {
    if (!strOf(obj(c).type)) errs.required(`status.conditions[${i}].type`, '');
  }
}

// ---- table (printers.go printHorizontalPodAutoscaler, formatHPAMetrics) ----

const pct = (v: unknown) => `${int(v)}%`;

/** formatHPAMetrics: "cpu: 80%/50%", "<unknown>" where no current value is known yet, at most two and "+ N more...". */
export function formatHPAMetrics(specs: unknown, statuses: unknown): string {
  const sp = arr(specs);
  const st = arr(statuses);
  if (!sp.length) return '<none>';
  const list = sp.map((raw, i) => {
    const spec = obj(raw);
    const s = obj(st[i]);
    switch (spec.type) {
      case 'External': {
        const t = obj(spec.external?.target);
        if (present(t.averageValue)) return `${present(s.external?.current?.averageValue) ? s.external.current.averageValue : '<unknown>'}/${t.averageValue} (avg)`;
        return `${isObject(s.external) ? str(String(s.external.current?.value ?? '0')) : '<unknown>'}/${t.value ?? '0'}`;
      }
      case 'Pods':
        return `${isObject(s.pods) ? String(s.pods.current?.averageValue ?? '0') : '<unknown>'}/${spec.pods?.target?.averageValue ?? '0'}`;
      case 'Object': {
        const t = obj(spec.object?.target);
        if (present(t.averageValue)) return `${present(s.object?.current?.averageValue) ? s.object.current.averageValue : '<unknown>'}/${t.averageValue} (avg)`;
        return `${isObject(s.object) ? String(s.object.current?.value ?? '0') : '<unknown>'}/${t.value ?? '0'}`;
      }
      case 'Resource':
      case 'ContainerResource': {
        const key = spec.type === 'Resource' ? 'resource' : 'containerResource';
        const src = obj(spec[key]);
        const cur = obj(s[key]);
        const t = obj(src.target);
        if (present(t.averageValue)) return `${str(src.name)}: ${isObject(s[key]) ? String(cur.current?.averageValue ?? '0') : '<unknown>'}/${t.averageValue}`;
        const current = present(cur.current?.averageUtilization) ? pct(cur.current.averageUtilization) : '<unknown>';
        return `${str(src.name)}: ${current}/${present(t.averageUtilization) ? pct(t.averageUtilization) : '<auto>'}`;
      }
      default:
        return '<unknown type>';
    }
  });
  return list.length > 2 ? `${list.slice(0, 2).join(', ')} + ${list.length - 2} more...` : list.join(', ');
}

const hpaTable: KindStrategy['table'] = {
  columns: () => [
    nameCol(),
    col('Reference', 'string', doc(`${V2}HorizontalPodAutoscalerSpec`, 'scaleTargetRef')),
    col('Targets', 'string', doc(`${V2}HorizontalPodAutoscalerSpec`, 'metrics')),
    col('MinPods', 'string', doc(`${V2}HorizontalPodAutoscalerSpec`, 'minReplicas')),
    col('MaxPods', 'string', doc(`${V2}HorizontalPodAutoscalerSpec`, 'maxReplicas')),
    col('Replicas', 'string', doc(`${V2}HorizontalPodAutoscalerStatus`, 'currentReplicas')),
    ageCol(),
  ],
  print: (o, now) => ({
    cells: [
      str(o.metadata?.name),
      `${str(o.spec?.scaleTargetRef?.kind)}/${str(o.spec?.scaleTargetRef?.name)}`,
      formatHPAMetrics(o.spec?.metrics, o.status?.currentMetrics),
      present(o.spec?.minReplicas) ? String(int(o.spec.minReplicas)) : '<unset>',
      int(o.spec?.maxReplicas),
      int(o.status?.currentReplicas),
      since(o.metadata?.creationTimestamp, now),
    ],
  }),
};

// ---- the strategy (pkg/registry/autoscaling/horizontalpodautoscaler/strategy.go) ----

const INFO_EXTRA = { shortNames: ['hpa'], categories: ['all'], subresources: ['status'] };

export const horizontalPodAutoscaler: KindStrategy = {
  info: resourceInfo(AUTOSCALING, 'v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', true, INFO_EXTRA),
  // ValidateHorizontalPodAutoscalerName: ValidateReplicationControllerName, a DNS subdomain.
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  defaults: defaultHPA,
  validate: validateHPA,
  validateUpdate: (errs, o, _old, opts) => {
    if (opts.subresource === 'status') validateHPAStatus(errs, obj(o.status));
  },
  // PrepareForCreate drops the status; a main-resource update keeps the stored one, a status update the stored spec.
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
    else if (subresource === 'status') o.spec = old.spec;
  },
  table: hpaTable,
};

// ---- autoscaling/v1 <-> v2 (pkg/apis/autoscaling/v1/conversion.go) ----

export const METRICS_ANNOTATION = 'autoscaling.alpha.kubernetes.io/metrics';
export const CURRENT_METRICS_ANNOTATION = 'autoscaling.alpha.kubernetes.io/current-metrics';
export const CONDITIONS_ANNOTATION = 'autoscaling.alpha.kubernetes.io/conditions';
export const BEHAVIOR_ANNOTATION = 'autoscaling.alpha.kubernetes.io/behavior';
const ROUND_TRIP = [METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION, CONDITIONS_ANNOTATION, BEHAVIOR_ANNOTATION];

const def = (o: Obj) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** v2 MetricTarget as v2beta1's target fields (v1's MetricSpec in the metrics annotation). */
function metricSpecToV1(m: Obj): Obj {
  const t = (src: Obj) => obj(src.target);
  switch (m.type) {
    case 'Resource':
    case 'ContainerResource': {
      const key = m.type === 'Resource' ? 'resource' : 'containerResource';
      const src = obj(m[key]);
      return { type: m.type, [key]: def({ name: src.name, targetAverageUtilization: t(src).averageUtilization, targetAverageValue: t(src).averageValue, container: src.container }) };
    }
    case 'Pods': {
      const src = obj(m.pods);
      return { type: m.type, pods: def({ metricName: src.metric?.name, targetAverageValue: t(src).averageValue, selector: src.metric?.selector }) };
    }
    case 'Object': {
      const src = obj(m.object);
      return { type: m.type, object: def({ target: src.describedObject, metricName: src.metric?.name, targetValue: t(src).value, selector: src.metric?.selector, averageValue: t(src).averageValue }) };
    }
    case 'External': {
      const src = obj(m.external);
      return { type: m.type, external: def({ metricName: src.metric?.name, metricSelector: src.metric?.selector, targetValue: t(src).value, targetAverageValue: t(src).averageValue }) };
    }
    default:
      return { type: m.type };
  }
}

function metricSpecFromV1(m: Obj): Obj {
  switch (m.type) {
    case 'Resource':
    case 'ContainerResource': {
      const key = m.type === 'Resource' ? 'resource' : 'containerResource';
      const src = obj(m[key]);
      const target = present(src.targetAverageUtilization)
        ? { type: 'Utilization', averageUtilization: src.targetAverageUtilization }
        : def({ type: 'AverageValue', averageValue: src.targetAverageValue });
      return { type: m.type, [key]: def({ name: src.name, container: src.container, target }) };
    }
    case 'Pods': {
      const src = obj(m.pods);
      return { type: m.type, pods: { metric: def({ name: src.metricName, selector: src.selector }), target: def({ type: 'AverageValue', averageValue: src.targetAverageValue }) } };
    }
    case 'Object': {
      const src = obj(m.object);
      const target = present(src.averageValue) ? { type: 'AverageValue', averageValue: src.averageValue } : def({ type: 'Value', value: src.targetValue });
      return { type: m.type, object: { describedObject: src.target, metric: def({ name: src.metricName, selector: src.selector }), target } };
    }
    case 'External': {
      const src = obj(m.external);
      const target = present(src.targetAverageValue) ? { type: 'AverageValue', averageValue: src.targetAverageValue } : def({ type: 'Value', value: src.targetValue });
      return { type: m.type, external: { metric: def({ name: src.metricName, selector: src.metricSelector }), target } };
    }
    default:
      return { type: m.type };
  }
}

function metricStatusToV1(m: Obj): Obj {
  switch (m.type) {
    case 'Resource':
    case 'ContainerResource': {
      const key = m.type === 'Resource' ? 'resource' : 'containerResource';
      const src = obj(m[key]);
      return { type: m.type, [key]: def({ name: src.name, currentAverageUtilization: src.current?.averageUtilization, currentAverageValue: src.current?.averageValue ?? '0', container: src.container }) };
    }
    case 'Pods': {
      const src = obj(m.pods);
      return { type: m.type, pods: def({ metricName: src.metric?.name, currentAverageValue: src.current?.averageValue ?? '0', selector: src.metric?.selector }) };
    }
    case 'Object': {
      const src = obj(m.object);
      return { type: m.type, object: def({ target: src.describedObject, metricName: src.metric?.name, currentValue: src.current?.value ?? '0', selector: src.metric?.selector, averageValue: src.current?.averageValue }) };
    }
    case 'External': {
      const src = obj(m.external);
      return { type: m.type, external: def({ metricName: src.metric?.name, metricSelector: src.metric?.selector, currentValue: src.current?.value ?? '0', currentAverageValue: src.current?.averageValue }) };
    }
    default:
      return { type: m.type };
  }
}

function metricStatusFromV1(m: Obj): Obj {
  switch (m.type) {
    case 'Resource':
    case 'ContainerResource': {
      const key = m.type === 'Resource' ? 'resource' : 'containerResource';
      const src = obj(m[key]);
      return { type: m.type, [key]: def({ name: src.name, container: src.container, current: def({ averageUtilization: src.currentAverageUtilization, averageValue: src.currentAverageValue }) }) };
    }
    case 'Pods': {
      const src = obj(m.pods);
      return { type: m.type, pods: { metric: def({ name: src.metricName, selector: src.selector }), current: def({ averageValue: src.currentAverageValue }) } };
    }
    case 'Object': {
      const src = obj(m.object);
      return { type: m.type, object: { describedObject: src.target, metric: def({ name: src.metricName, selector: src.selector }), current: def({ value: src.currentValue, averageValue: src.averageValue }) } };
    }
    case 'External': {
      const src = obj(m.external);
      return { type: m.type, external: { metric: def({ name: src.metricName, selector: src.metricSelector }), current: def({ value: src.currentValue, averageValue: src.currentAverageValue }) } };
    }
    default:
      return { type: m.type };
  }
}

// The behavior annotation is the internal Go struct marshalled as it is (no JSON tags): capitalized names, nil pointers as null.
const rulesToInternal = (r: unknown) =>
  isObject(r)
    ? {
        StabilizationWindowSeconds: r.stabilizationWindowSeconds ?? null,
        SelectPolicy: r.selectPolicy ?? null,
        Policies: Array.isArray(r.policies) ? r.policies.map((p: Obj) => ({ Type: p?.type, Value: p?.value, PeriodSeconds: p?.periodSeconds })) : null,
      }
    : null;
const rulesFromInternal = (r: unknown) =>
  isObject(r)
    ? def({
        stabilizationWindowSeconds: r.StabilizationWindowSeconds ?? undefined,
        selectPolicy: r.SelectPolicy ?? undefined,
        policies: Array.isArray(r.Policies) ? r.Policies.map((p: Obj) => ({ type: p?.Type, value: p?.Value, periodSeconds: p?.PeriodSeconds })) : undefined,
      })
    : undefined;

/** The metadata without the round-trip annotations (DropRoundTripHorizontalPodAutoscalerAnnotations). */
function dropRoundTrip(meta: Obj): { meta: Obj; annotations: Obj } {
  const annotations: Obj = isObject(meta.annotations) ? { ...meta.annotations } : {};
  const kept = Object.fromEntries(Object.entries(annotations).filter(([k]) => !ROUND_TRIP.includes(k)));
  const out = { ...meta };
  if (Object.keys(kept).length) out.annotations = kept;
  else delete out.annotations;
  return { meta: out, annotations };
}

const isCPUUtilization = (m: Obj) => m?.type === 'Resource' && m.resource?.name === 'cpu' && present(m.resource?.target?.averageUtilization);

/** Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler (v2 as the internal version). */
export function hpaV2ToV1(o: Obj): Obj {
  const { meta } = dropRoundTrip(obj(o.metadata));
  const spec = obj(o.spec);
  const status = isObject(o.status) ? o.status : undefined;
  const annotations: Obj = { ...(meta.annotations ?? {}) };
  const metrics = arr(spec.metrics);
  const other = metrics.filter((m) => !isCPUUtilization(obj(m)));
  if (other.length) annotations[METRICS_ANNOTATION] = JSON.stringify(other.map((m) => metricSpecToV1(obj(m))));
  const current = arr(status?.currentMetrics);
  if (current.length) annotations[CURRENT_METRICS_ANNOTATION] = JSON.stringify(current.map((m) => metricStatusToV1(obj(m))));
  if (isObject(spec.behavior)) annotations[BEHAVIOR_ANNOTATION] = JSON.stringify({ ScaleUp: rulesToInternal(spec.behavior.scaleUp), ScaleDown: rulesToInternal(spec.behavior.scaleDown) });
  const conditions = arr(status?.conditions);
  if (conditions.length) annotations[CONDITIONS_ANNOTATION] = JSON.stringify(conditions.map((c) => def({ type: c?.type, status: c?.status, lastTransitionTime: c?.lastTransitionTime, reason: c?.reason, message: c?.message })));
  const cpu = metrics.find((m) => m?.type === 'Resource' && m.resource?.name === 'cpu');
  const cpuStatus = current.filter((m) => m?.type === 'Resource' && m.resource?.name === 'cpu' && present(m.resource?.current?.averageUtilization)).pop();
  const out: Obj = {
    apiVersion: `${AUTOSCALING}/v1`,
    kind: 'HorizontalPodAutoscaler',
    metadata: { ...meta, ...(Object.keys(annotations).length ? { annotations } : {}) },
    spec: def({
      scaleTargetRef: spec.scaleTargetRef,
      minReplicas: spec.minReplicas,
      maxReplicas: spec.maxReplicas,
      targetCPUUtilizationPercentage: cpu?.resource?.target?.averageUtilization,
    }),
  };
  // A struct in v1 too, its replica counts without omitempty.
  out.status = def({
    observedGeneration: status?.observedGeneration,
    lastScaleTime: status?.lastScaleTime,
    currentReplicas: status?.currentReplicas ?? 0,
    desiredReplicas: status?.desiredReplicas ?? 0,
    currentCPUUtilizationPercentage: cpuStatus?.resource?.current?.averageUtilization,
  });
  return out;
}

/** The JSON held in a round-trip annotation; a value that is not is a 400, as kube's conversion error. */
function annotationJSON(annotations: Obj, key: string): unknown {
  try {
    return JSON.parse(String(annotations[key]));
  } catch (e) {
    throw errors.badRequest(`annotation ${key}: ${(e as Error).message}`);
  }
}

/** Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler. */
export function hpaV1ToV2(o: Obj): Obj {
  const { meta, annotations } = dropRoundTrip(obj(o.metadata));
  const spec = obj(o.spec);
  const metrics: Obj[] = [];
  if (present(spec.targetCPUUtilizationPercentage)) {
    metrics.push({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: spec.targetCPUUtilizationPercentage } } });
  }
  if (METRICS_ANNOTATION in annotations) metrics.push(...arr(annotationJSON(annotations, METRICS_ANNOTATION)).map((m) => metricSpecFromV1(obj(m))));
  // autoscaling/v1 formerly had an implicit default applied in the controller: explicit here.
  if (!metrics.length) metrics.push({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: DEFAULT_CPU_UTILIZATION } } });
  const v2spec: Obj = def({ scaleTargetRef: spec.scaleTargetRef, minReplicas: spec.minReplicas, maxReplicas: spec.maxReplicas, metrics });
  if (BEHAVIOR_ANNOTATION in annotations) {
    const b = obj(annotationJSON(annotations, BEHAVIOR_ANNOTATION));
    v2spec.behavior = def({ scaleUp: rulesFromInternal(b.ScaleUp), scaleDown: rulesFromInternal(b.ScaleDown) });
  }
  const out: Obj = { apiVersion: `${AUTOSCALING}/v2`, kind: 'HorizontalPodAutoscaler', metadata: meta, spec: v2spec };
  if (isObject(o.status)) {
    const s = o.status;
    let currentMetrics: Obj[] | undefined;
    if (CURRENT_METRICS_ANNOTATION in annotations) currentMetrics = arr(annotationJSON(annotations, CURRENT_METRICS_ANNOTATION)).map((m) => metricStatusFromV1(obj(m)));
    else if (present(s.currentCPUUtilizationPercentage)) currentMetrics = [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: s.currentCPUUtilizationPercentage } } }];
    const conditions = CONDITIONS_ANNOTATION in annotations ? arr(annotationJSON(annotations, CONDITIONS_ANNOTATION)) : undefined;
    out.status = def({
      observedGeneration: s.observedGeneration,
      lastScaleTime: s.lastScaleTime,
      currentReplicas: s.currentReplicas,
      desiredReplicas: s.desiredReplicas ?? 0,
      currentMetrics: currentMetrics?.length ? currentMetrics : undefined,
      conditions: conditions?.length ? conditions : undefined,
    });
  }
  return out;
}

export const horizontalPodAutoscalerV1: KindStrategy = {
  info: resourceInfo(AUTOSCALING, 'v1', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', true, INFO_EXTRA),
  meta: horizontalPodAutoscaler.meta,
  conversion: { storage: horizontalPodAutoscaler.info, toStorage: hpaV1ToV2, fromStorage: hpaV2ToV1 },
  table: {
    columns: hpaTable!.columns,
    print: (o, now) => hpaTable!.print(hpaV1ToV2(o) as KubeObject, now),
  },
};
