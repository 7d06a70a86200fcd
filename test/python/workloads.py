"""The official Python client against Skiff's workloads, as its users write them: AppsV1Api (a Deployment
created, scaled through the scale subresource, rolled to a new image; its ReplicaSets; a DaemonSet; a
StatefulSet), BatchV1Api (a Job run to completion; a CronJob), CoreV1Api (a PersistentVolumeClaim, and a
pod evicted through the eviction subresource), and a watch on Deployments. The cluster runs hollow nodes:
pods are reported Running and Ready but run nothing, so this script marks the Job's pods Succeeded as a
kubelet would. Prints what it saw as one JSON object; test/client-python.test.ts asserts on it."""

import json
import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

kubeconfig, ns = sys.argv[1], sys.argv[2]
api = config.new_client_from_config(config_file=kubeconfig)
core = client.CoreV1Api(api)
apps = client.AppsV1Api(api)
batch = client.BatchV1Api(api)
policy = client.PolicyV1Api(api)
out = {}


def until(what, f, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        v = f()
        if v:
            return v
        time.sleep(0.2)
    raise TimeoutError(what)


def template(app, image):
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": app}),
        spec=client.V1PodSpec(containers=[client.V1Container(name=app, image=image)]),
    )


core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

# --- Deployment
dep = apps.create_namespaced_deployment(
    ns,
    client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(replicas=2, selector=client.V1LabelSelector(match_labels={"app": "web"}), template=template("web", "busybox:1")),
    ),
)
out["deploymentDefaults"] = {
    "strategy": dep.spec.strategy.type,
    "maxSurge": dep.spec.strategy.rolling_update.max_surge,
    "revisionHistoryLimit": dep.spec.revision_history_limit,
    "progressDeadlineSeconds": dep.spec.progress_deadline_seconds,
}


def available(name, replicas):
    d = apps.read_namespaced_deployment_status(name, ns)
    s = d.status
    return (
        d
        if (s.observed_generation or 0) >= d.metadata.generation
        and s.updated_replicas == replicas
        and s.available_replicas == replicas
        and (s.replicas or 0) == replicas
        else None
    )


d = until("deployment available", lambda: available("web", 2))
out["available"] = {c.type: c.status for c in d.status.conditions}
apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})
until("scaled to 3", lambda: available("web", 3))
out["scale"] = apps.read_namespaced_deployment_scale("web", ns).status.replicas
apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "busybox:2"}]}}}})
d = until("rolled to busybox:2", lambda: available("web", 3))
rs = apps.list_namespaced_replica_set(ns, label_selector="app=web").items
out["replicaSets"] = sorted(
    (r.metadata.annotations.get("deployment.kubernetes.io/revision"), r.spec.replicas, r.spec.template.spec.containers[0].image) for r in rs
)
out["deploymentRevision"] = d.metadata.annotations.get("deployment.kubernetes.io/revision")

# A watch on Deployments sees a change made after it starts.
w = watch.Watch()
seen = []
rv = apps.list_namespaced_deployment(ns).metadata.resource_version
apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"tier": "front"}}})
for ev in w.stream(apps.list_namespaced_deployment, ns, resource_version=rv, timeout_seconds=10):
    seen.append([ev["type"], ev["object"].metadata.name, (ev["object"].metadata.labels or {}).get("tier")])
    if ev["object"].metadata.labels and ev["object"].metadata.labels.get("tier") == "front":
        w.stop()
out["watch"] = seen[-1]

# An invalid Deployment: the selector does not match the template's labels.
try:
    apps.create_namespaced_deployment(
        ns,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="bad"),
            spec=client.V1DeploymentSpec(selector=client.V1LabelSelector(match_labels={"app": "other"}), template=template("bad", "x")),
        ),
    )
    out["invalid"] = "created"
except ApiException as e:
    body = json.loads(e.body)
    out["invalid"] = {"status": e.status, "reason": body["reason"], "causes": [c["field"] for c in body["details"]["causes"]]}

# --- DaemonSet: one pod per node.
apps.create_namespaced_daemon_set(
    ns,
    client.V1DaemonSet(metadata=client.V1ObjectMeta(name="agent"), spec=client.V1DaemonSetSpec(selector=client.V1LabelSelector(match_labels={"app": "agent"}), template=template("agent", "busybox"))),
)
nodes = len(core.list_node().items)
ds = until("daemonset ready", lambda: (lambda d: d if d.status.number_ready == nodes and d.status.desired_number_scheduled == nodes else None)(apps.read_namespaced_daemon_set("agent", ns)))
pods = core.list_namespaced_pod(ns, label_selector="app=agent").items
out["daemonSet"] = {"nodes": nodes, "ready": ds.status.number_ready, "distinctNodes": len({p.spec.node_name for p in pods})}

# --- StatefulSet: ordered, stable names, a claim per pod.
core.create_namespaced_service(ns, client.V1Service(metadata=client.V1ObjectMeta(name="db"), spec=client.V1ServiceSpec(cluster_ip="None", selector={"app": "db"}, ports=[client.V1ServicePort(port=5432)])))
apps.create_namespaced_stateful_set(
    ns,
    client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="db"),
        spec=client.V1StatefulSetSpec(
            service_name="db",
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "db"}),
            template=template("db", "busybox"),
            volume_claim_templates=[
                client.V1PersistentVolumeClaim(
                    metadata=client.V1ObjectMeta(name="data"),
                    spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"], resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"})),
                )
            ],
        ),
    ),
)
sts = until("statefulset ready", lambda: (lambda s: s if s.status.ready_replicas == 2 else None)(apps.read_namespaced_stateful_set("db", ns)), 90)
out["statefulSet"] = {
    "pods": sorted(p.metadata.name for p in core.list_namespaced_pod(ns, label_selector="app=db").items),
    "claims": sorted(c.metadata.name for c in core.list_namespaced_persistent_volume_claim(ns).items),
}

# --- Job: its pods, completed as a kubelet would report them, then the Complete condition.
batch.create_namespaced_job(
    ns,
    client.V1Job(
        metadata=client.V1ObjectMeta(name="once"),
        spec=client.V1JobSpec(completions=2, parallelism=2, template=client.V1PodTemplateSpec(spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(name="c", image="busybox")]))),
    ),
)
job_pods = until("job pods", lambda: (lambda ps: ps if len(ps) == 2 else None)(core.list_namespaced_pod(ns, label_selector="job-name=once").items))
for p in job_pods:
    until("job pod bound", lambda: core.read_namespaced_pod(p.metadata.name, ns).spec.node_name)
    core.patch_namespaced_pod_status(
        p.metadata.name,
        ns,
        {"status": {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}], "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}},
    )
job = until("job complete", lambda: (lambda j: j if any(c.type == "Complete" and c.status == "True" for c in (j.status.conditions or [])) else None)(batch.read_namespaced_job_status("once", ns)))
out["job"] = {"succeeded": job.status.succeeded, "completionTime": job.status.completion_time is not None}

# --- CronJob: stored with its defaults.
cj = batch.create_namespaced_cron_job(
    ns,
    client.V1CronJob(metadata=client.V1ObjectMeta(name="nightly"), spec=client.V1CronJobSpec(schedule="0 3 * * *", job_template=client.V1JobTemplateSpec(spec=client.V1JobSpec(template=client.V1PodTemplateSpec(spec=client.V1PodSpec(restart_policy="OnFailure", containers=[client.V1Container(name="c", image="busybox")])))))),
)
out["cronJob"] = {"concurrencyPolicy": cj.spec.concurrency_policy, "successfulJobsHistoryLimit": cj.spec.successful_jobs_history_limit}

# --- Eviction: a Deployment pod evicted through the subresource, then replaced.
victim_pod = core.list_namespaced_pod(ns, label_selector="app=web").items[0]
victim, victim_uid = victim_pod.metadata.name, victim_pod.metadata.uid
policy_body = client.V1Eviction(metadata=client.V1ObjectMeta(name=victim, namespace=ns))
core.create_namespaced_pod_eviction(victim, ns, policy_body)
# By uid: Skiff's ReplicaSet gives the replacement the lowest free name, which may be the victim's once it
# is gone (kube would draw a random one); a CI run saw the replacement under the victim's name.
until("evicted pod gone", lambda: victim_uid not in [p.metadata.uid for p in core.list_namespaced_pod(ns, label_selector="app=web").items if p.metadata.deletion_timestamp is None])
until("replaced", lambda: available("web", 3))
out["evicted"] = True

# --- Cascading delete of the Deployment.
apps.delete_namespaced_deployment("web", ns, propagation_policy="Foreground")
until("deployment gone", lambda: not [d for d in apps.list_namespaced_deployment(ns).items if d.metadata.name == "web"])
out["afterDelete"] = {"replicaSets": len(apps.list_namespaced_replica_set(ns, label_selector="app=web").items), "pods": len([p for p in core.list_namespaced_pod(ns, label_selector="app=web").items if p.metadata.deletion_timestamp is None])}

print(json.dumps(out))
