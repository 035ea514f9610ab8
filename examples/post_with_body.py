"""Cloudflare's "POST request with body" example, in Python.

Workers::

    const response = await env.VPC_SERVICE_BINDING.fetch(new Request(
        "http://internal-api.company.local/users",
        { method: "POST",
          headers: { "Content-Type": "application/json",
                     Authorization: `Bearer ${env.API_TOKEN}` },
          body: JSON.stringify({ name: "John Doe", email: "john@example.com" }) }));
    if (!response.ok) { ... }

Run: ``python examples/post_with_body.py``.
"""

import json
import os

from vpc_requests import Binding, VPCService
from vpc_requests.testing import PrivateService, Reply


def create_user(seen):
    user = json.loads(seen.body)
    return Reply.json({"id": 1, **user}, status=201)


API_TOKEN = os.environ.get("API_TOKEN", "example-token")

with PrivateService(handler=create_user) as private:
    service = VPCService(ipv4="127.0.0.1", http_port=private.port, name="internal-api")
    with Binding("VPC_SERVICE_BINDING", service) as binding:
        response = binding.fetch(
            "http://internal-api.company.local/users",
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"},
            body=json.dumps({"name": "John Doe", "email": "john@example.com"}),
        )
        if not response.ok:
            raise SystemExit(f"Failed to create user: {response.status_code}")
        user = response.json()
    seen = private.seen[-1]
    print(f"status {response.status_code}, created {user}")
    print(f"the service saw: {seen.method} {seen.target}, Host {seen.host}, "
          f"Content-Type {seen.header('Content-Type')}, body {seen.body.decode()}")
    assert seen.method == "POST" and seen.header("Authorization") == f"Bearer {API_TOKEN}"
