"""The official Python client against Skiff: a CRD through ApiextensionsV1Api, then its custom resources
through the dynamic client (discovery, create, get, list, merge patch, status, watch, a refused invalid
object, delete). Prints what it saw as one JSON object; test/client-python.test.ts asserts on it."""

import json
import sys
import time

from kubernetes import client, config, dynamic
from kubernetes.dynamic.exceptions import NotFoundError, UnprocessibleEntityError

kubeconfig, ns = sys.argv[1], sys.argv[2]
api = config.new_client_from_config(config_file=kubeconfig)
GROUP = "stable.example.com"
out = {}

crd = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"crontabs.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-validations": [{"rule": "self.replicas <= 10", "message": "at most 10 replicas"}],
                                "properties": {
                                    "cronSpec": {"type": "string"},
                                    "image": {"type": "string"},
                                    "replicas": {"type": "integer", "default": 1},
                                },
                            },
                            "status": {"type": "object", "properties": {"active": {"type": "integer"}}},
                        },
                    }
                },
            }
        ],
    },
}
ext = client.ApiextensionsV1Api(api)
ext.create_custom_resource_definition(body=crd)
for _ in range(200):
    got = ext.read_custom_resource_definition(name=f"crontabs.{GROUP}")
    if any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or [])):
        break
    time.sleep(0.05)
out["established"] = True

dyn = dynamic.DynamicClient(api)
crontabs = dyn.resources.get(api_version=f"{GROUP}/v1", kind="CronTab")
out["discovered"] = {"name": crontabs.name, "namespaced": crontabs.namespaced, "shortNames": crontabs.short_names}

before = crontabs.get(namespace=ns)
rv = before.metadata.resourceVersion
created = crontabs.create(body={"apiVersion": f"{GROUP}/v1", "kind": "CronTab", "metadata": {"name": "py"}, "spec": {"cronSpec": "*/5 * * * *", "image": "x"}}, namespace=ns)
out["created"] = {"name": created.metadata.name, "replicas": created.spec.replicas, "generation": created.metadata.generation}
out["got"] = crontabs.get(name="py", namespace=ns).spec.cronSpec
listed = crontabs.get(namespace=ns)
out["list"] = {"kind": listed.kind, "names": [i.metadata.name for i in listed.items]}
patched = crontabs.patch(body={"spec": {"image": "y"}}, name="py", namespace=ns, content_type="application/merge-patch+json")
out["patched"] = {"image": patched.spec.image, "generation": patched.metadata.generation}
status = crontabs.status.patch(body={"status": {"active": 2}}, name="py", namespace=ns, content_type="application/merge-patch+json")
out["status"] = {"active": status.status.active, "generation": status.metadata.generation}

try:
    crontabs.create(body={"apiVersion": f"{GROUP}/v1", "kind": "CronTab", "metadata": {"name": "bad"}, "spec": {"replicas": 11}}, namespace=ns)
    out["invalid"] = "accepted"
except UnprocessibleEntityError as e:
    body = json.loads(e.body)
    out["invalid"] = {"status": e.status, "reason": body["reason"], "message": body["message"]}

events = []
for ev in crontabs.watch(namespace=ns, resource_version=rv, timeout=2):
    events.append(f"{ev['type']} {ev['object'].metadata.name} {ev['object'].spec.image}")
    if len(events) == 3:
        break
out["watch"] = events

crontabs.delete(name="py", namespace=ns)
try:
    crontabs.get(name="py", namespace=ns)
    out["deleted"] = False
except NotFoundError:
    out["deleted"] = True

print(json.dumps(out))
