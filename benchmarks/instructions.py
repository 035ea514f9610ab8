"""Instructions per request of each client, counted by valgrind's callgrind:
deterministic where wall-clock times on a shared machine are not.

``python benchmarks/instructions.py [CLIENT ...] [--scheme http|https] [-n N]``

For each client (``urllib3``, ``plain``, ``adapter``, ``session``,
``fetch``: those of ``benchmarks/run.py``) it runs this script again under
``valgrind --tool=callgrind``, which warms the client up (200 requests) and
then makes ``N`` requests inside one ``functools.reduce`` call, the only
code callgrind counts (``--toggle-collect=functools_reduce``): Python's
startup, the imports and the server (its own process) are not counted.
Prints instructions per request and the ratio to the first client.
Needs ``valgrind``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

CLIENTS = ("urllib3", "plain", "adapter", "session", "fetch")


def child(name: str, count: int, scheme: str) -> None:
    """Under callgrind: warm up, then ``count`` requests inside reduce()."""
    import run

    with run.Server(tls=scheme == "https") as server:
        call = run.clients(server)[name][0]
        for _ in range(200):
            call()
        gc.collect()
        functools.reduce(lambda acc, _: (call(), acc)[1], range(count), 0)


def count(name: str, requests: int, scheme: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=functools_reduce",
             f"--callgrind-out-file={out}", sys.executable, __file__, "--child", name, str(requests), scheme],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        summary = re.search(r"^summary:\s+(\d+)", Path(out).read_text(), re.M)
        if summary is None:
            raise RuntimeError(f"no summary in callgrind's output for {name}")
        return int(summary.group(1)) // requests


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]), argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clients", nargs="*", help=f"of {', '.join(CLIENTS)} (default: urllib3 fetch)")
    parser.add_argument("--scheme", choices=("http", "https"), default="http")
    parser.add_argument("-n", type=int, default=300, help="requests counted per client")
    args = parser.parse_args(argv)
    unknown = set(args.clients) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown client {sorted(unknown)[0]!r}; clients: {', '.join(CLIENTS)}")
    first = None
    for name in args.clients or ["urllib3", "fetch"]:
        per_request = count(name, args.n, args.scheme)
        first = first or per_request
        print(f"{args.scheme:5s} {name:8s} {per_request:10,d} instructions/request  {per_request / first:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
