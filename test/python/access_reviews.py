"""The official Python client asks Skiff who it is and what it may do: SelfSubjectAccessReview,
SelfSubjectRulesReview and SelfSubjectReview as a plain user, and again impersonating one. Prints what it
saw as one JSON object; test/auth.reviews.test.ts asserts on it."""

import json
import sys

from kubernetes import client, config

kubeconfig, token, impersonator_token = sys.argv[1], sys.argv[2], sys.argv[3]


def api_as(bearer, impersonate=None):
    api = config.new_client_from_config(config_file=kubeconfig)
    # The kubeconfig's loader would put its own token back before each call (refresh_api_key_hook).
    api.configuration.refresh_api_key_hook = None
    api.configuration.api_key = {"authorization": "Bearer " + bearer}
    api.configuration.api_key_prefix = {}
    if impersonate:
        api.set_default_header("Impersonate-User", impersonate)
    return api


def can(api, namespace, verb, resource):
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=verb, resource=resource)
        )
    )
    status = client.AuthorizationV1Api(api).create_self_subject_access_review(review).status
    return {"allowed": status.allowed, "denied": status.denied, "reason": status.reason}


out = {}
alice = api_as(token)
out["can_list_team_a"] = can(alice, "team-a", "list", "pods")
out["can_list_team_b"] = can(alice, "team-b", "list", "pods")
rules = client.AuthorizationV1Api(alice).create_self_subject_rules_review(
    client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace="team-a"))
).status
out["rules"] = [{"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources} for r in rules.resource_rules]
out["incomplete"] = rules.incomplete
me = client.AuthenticationV1Api(alice).create_self_subject_review(client.V1SelfSubjectReview()).status.user_info
out["whoami"] = {"username": me.username, "groups": me.groups}

as_alice = api_as(impersonator_token, impersonate="alice")
me = client.AuthenticationV1Api(as_alice).create_self_subject_review(client.V1SelfSubjectReview()).status.user_info
out["impersonated"] = {"username": me.username, "groups": me.groups}
try:
    client.AuthenticationV1Api(api_as(token, impersonate="carol")).create_self_subject_review(client.V1SelfSubjectReview())
    out["refused"] = None
except client.ApiException as e:
    out["refused"] = {"status": e.status, "message": json.loads(e.body)["message"]}

print(json.dumps(out))
