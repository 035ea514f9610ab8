"""Cloudflare's "Request with HTTPS and IP address" example, in Python.

Workers::

    const response = await env.VPC_SERVICE_BINDING.fetch(
        new Request("https://10.0.1.50/api/data"));

The connection goes to the service's https_port (here a loopback TLS service
whose throwaway certificate names 10.0.1.50); an IP-literal URL sends no SNI
and the certificate is checked against its IP addresses. Nothing ever
connects to 10.0.1.50. Run: ``python examples/https_ip.py`` (needs trustme:
``pip install 'vpc_requests[demo]'``).
"""

from vpc_requests import Binding, VPCService
from vpc_requests.testing import PrivateService, Reply

with PrivateService(tls=True, names=["10.0.1.50"], handler=lambda s: Reply.json({"data": 42})) as private:
    service = VPCService(ipv4="127.0.0.1", https_port=private.port, name="data-api")
    with Binding("VPC_SERVICE_BINDING", service) as binding:
        # verify= points at the throwaway CA; with a real service, its CA.
        response = binding.fetch("https://10.0.1.50/api/data", verify=private.ca_path)
    seen = private.seen[-1]
    print(f"status {response.status_code}, body {response.json()}")
    print(f"the service saw: {seen.method} {seen.target}, Host {seen.host}, "
          f"SNI {seen.sni or '(none: IP literal)'}, on port {seen.port}")
    assert seen.host == "10.0.1.50" and seen.sni is None
