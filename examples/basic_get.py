"""Cloudflare's "Basic GET request" example, in Python.

Workers::

    const response = await env.VPC_SERVICE_BINDING.fetch(
        new Request("http://internal-api.company.local/users"));
    const users = await response.json();

Here a loopback service stands in for the private one; the binding sends the
request there, while the service sees ``Host: internal-api.company.local``.
Run: ``python examples/basic_get.py``.
"""

from vpc_requests import Binding, VPCService
from vpc_requests.testing import PrivateService, Reply

USERS = [{"name": "John Doe", "email": "john@example.com"}]

with PrivateService(handler=lambda seen: Reply.json(USERS)) as private:
    service = VPCService(ipv4="127.0.0.1", http_port=private.port, name="internal-api")
    with Binding("VPC_SERVICE_BINDING", service) as binding:
        response = binding.fetch("http://internal-api.company.local/users")
        users = response.json()
    seen = private.seen[-1]
    print(f"status {response.status_code}, users {users}")
    print(f"the service saw: {seen.method} {seen.target}, Host {seen.host}, on port {seen.port}")
    assert users == USERS and seen.host == "internal-api.company.local"
