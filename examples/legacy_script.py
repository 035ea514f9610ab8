"""A legacy script that already uses ``requests`` gets binding semantics
without being rewritten: mount an adapter (or call ``mount()``) once.

Run: ``python examples/legacy_script.py``.
"""

import requests

from vpc_requests import Binding, VPCService, VPCServiceAdapter, mount
from vpc_requests.testing import PrivateService


def legacy_report(session: requests.Session) -> list:
    """Unchanged legacy code: plain requests calls with the URLs it always had."""
    first = session.get("http://internal-api.company.local/users", timeout=5)
    second = session.get("http://internal-api.company.local:8080/health", timeout=5)
    return [first.status_code, second.status_code]


with PrivateService() as private:
    service = VPCService(ipv4="127.0.0.1", http_port=private.port, name="internal-api")

    # 1. The adapter, mounted like any requests transport adapter. Every
    #    http:// request of this session now goes to the service.
    with requests.Session() as session:
        session.mount("http://", VPCServiceAdapter(service, binding="PRIVATE_API"))
        print("adapter:", legacy_report(session), [s.host for s in private.seen])

    # 2. mount(): only the hosts you name go through the binding; any other
    #    host goes out exactly as plain requests would send it.
    private.clear()
    with requests.Session() as session, Binding("PRIVATE_API", service) as binding:
        mount(session, binding, hosts={"internal-api.company.local": "PRIVATE_API"})
        print("mount():", legacy_report(session), [s.host for s in private.seen])
    assert [s.host for s in private.seen] == [
        "internal-api.company.local", "internal-api.company.local:8080"]
