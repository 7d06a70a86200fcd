"""The official Python client's TokenRequest: CoreV1Api.create_namespaced_service_account_token with an
audience and a lifetime, then a token for the apiserver's own audience checked with
AuthenticationV1Api.create_token_review. Prints what it saw as one JSON object;
test/serviceaccounts.test.ts asserts on it."""

import json
import sys

from kubernetes import client, config

kubeconfig, ns, name = sys.argv[1], sys.argv[2], sys.argv[3]
api = config.new_client_from_config(config_file=kubeconfig)
core = client.CoreV1Api(api)
authn = client.AuthenticationV1Api(api)

req = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=["py-audience"], expiration_seconds=1200))
tr = core.create_namespaced_service_account_token(name, ns, req)
own = core.create_namespaced_service_account_token(name, ns, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])))
review = authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=own.status.token)))
print(json.dumps({
    "token": tr.status.token,
    "expiration_seconds": tr.spec.expiration_seconds,
    "expiration_timestamp": tr.status.expiration_timestamp.isoformat(),
    "review": {"authenticated": review.status.authenticated, "username": review.status.user.username},
}))
