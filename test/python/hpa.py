"""The official Python client and HorizontalPodAutoscalers at both versions: one made through
AutoscalingV2Api (a cpu utilization target, a memory average-value target and a behavior) read back
through AutoscalingV1Api (the cpu target as targetCPUUtilizationPercentage, the rest in kube's
autoscaling.alpha.kubernetes.io annotations), replaced through v1 with what v1 read (nothing lost), and one
made through v1 read through v2. Bad input is refused with 422. Prints what it saw as one JSON object;
test/hpa.api.test.ts asserts on it."""

import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException

kubeconfig, ns = sys.argv[1], sys.argv[2]
api = config.new_client_from_config(config_file=kubeconfig)
v1 = client.AutoscalingV1Api(api)
v2 = client.AutoscalingV2Api(api)
out = {}

ref = client.V2CrossVersionObjectReference(api_version='apps/v1', kind='Deployment', name='web')
made = v2.create_namespaced_horizontal_pod_autoscaler(ns, client.V2HorizontalPodAutoscaler(
    metadata=client.V1ObjectMeta(name='py2'),
    spec=client.V2HorizontalPodAutoscalerSpec(
        scale_target_ref=ref, min_replicas=2, max_replicas=6,
        metrics=[
            client.V2MetricSpec(type='Resource', resource=client.V2ResourceMetricSource(name='cpu', target=client.V2MetricTarget(type='Utilization', average_utilization=60))),
            client.V2MetricSpec(type='Resource', resource=client.V2ResourceMetricSource(name='memory', target=client.V2MetricTarget(type='AverageValue', average_value='100Mi'))),
        ],
        behavior=client.V2HorizontalPodAutoscalerBehavior(scale_down=client.V2HPAScalingRules(stabilization_window_seconds=30, policies=[client.V2HPAScalingPolicy(type='Pods', value=1, period_seconds=60)])),
    ),
))
out['created'] = {'minReplicas': made.spec.min_replicas, 'scaleUpPolicies': [[p.type, p.value, p.period_seconds] for p in made.spec.behavior.scale_up.policies]}

old = v1.read_namespaced_horizontal_pod_autoscaler('py2', ns)
ann = old.metadata.annotations or {}
out['v1'] = {
    'target': old.spec.target_cpu_utilization_percentage,
    'min': old.spec.min_replicas,
    'max': old.spec.max_replicas,
    'metricsAnnotation': json.loads(ann.get('autoscaling.alpha.kubernetes.io/metrics', 'null')),
    'behaviorAnnotation': json.loads(ann.get('autoscaling.alpha.kubernetes.io/behavior', 'null')),
}
# A v1 client's read-modify-write: only maxReplicas changes; v2's memory metric and behavior survive it.
# (The controller writes status meanwhile: a conflict is read again and retried, as clients do.)
for attempt in range(10):
    cur = old if attempt == 0 else v1.read_namespaced_horizontal_pod_autoscaler('py2', ns)
    cur.spec.max_replicas = 8
    try:
        v1.replace_namespaced_horizontal_pod_autoscaler('py2', ns, cur)
        break
    except ApiException as e:
        if e.status != 409:
            raise
back = v2.read_namespaced_horizontal_pod_autoscaler('py2', ns)
out['afterV1Replace'] = {
    'max': back.spec.max_replicas,
    'metrics': [[m.resource.name, m.resource.target.type, m.resource.target.average_utilization, m.resource.target.average_value] for m in back.spec.metrics],
    'scaleDown': [back.spec.behavior.scale_down.stabilization_window_seconds, [[p.type, p.value, p.period_seconds] for p in back.spec.behavior.scale_down.policies]],
    'annotations': sorted((back.metadata.annotations or {}).keys()),
}

v1.create_namespaced_horizontal_pod_autoscaler(ns, client.V1HorizontalPodAutoscaler(
    metadata=client.V1ObjectMeta(name='py1'),
    spec=client.V1HorizontalPodAutoscalerSpec(scale_target_ref=client.V1CrossVersionObjectReference(api_version='apps/v1', kind='Deployment', name='web'), max_replicas=4, target_cpu_utilization_percentage=70),
))
m = v2.read_namespaced_horizontal_pod_autoscaler('py1', ns).spec
out['v1ToV2'] = {'min': m.min_replicas, 'metrics': [[x.type, x.resource.name, x.resource.target.type, x.resource.target.average_utilization] for x in m.metrics], 'behavior': m.behavior is not None}
out['list'] = sorted(h.metadata.name for h in v1.list_namespaced_horizontal_pod_autoscaler(ns).items)

try:
    v2.create_namespaced_horizontal_pod_autoscaler(ns, client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name='bad'),
        spec=client.V2HorizontalPodAutoscalerSpec(scale_target_ref=ref, min_replicas=0, max_replicas=3),
    ))
    out['invalid'] = None
except ApiException as e:
    body = json.loads(e.body)
    out['invalid'] = {'status': e.status, 'reason': body['reason'], 'causes': [c['field'] for c in body['details']['causes']]}

print(json.dumps(out))
