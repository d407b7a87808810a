"""The herd implementations the benchmark compares, as data.

Each is a command line: ``python -m MODULE [ARGS] NAME --config ...``, with
the flags of ``python -m trioherd``. Adding one is one entry in
:data:`IMPLEMENTATIONS`; ratios are always trio over the others.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import tempfile
from dataclasses import dataclass

#: The implementation every ratio is taken against.
BASELINE = "trio"
#: The workloads that the ``+logs`` implementations (every line logged) run.
LOGGED_WORKLOADS = ("iamat", "flood")
#: The implementations run again with every line logged by default: the two
#: herds a user would run with their defaults, and asyncio at its fastest
#: (uvloop's and the anyio herd's logged runs are there on demand).
LOGGED_IMPLEMENTATIONS = ("trio", "asyncio", "asyncio-protocol")


@dataclass(frozen=True)
class Implementation:
    """A herd implementation runnable as ``python -m module *args``.

    Args:
        name: what the table calls it.
        module: the module run with ``python -m``.
        args: flags that come before the server's name.
        requires: further modules that must import for it to run.
        default: run when ``--impls`` is not given.
        workloads: the only workloads it runs (empty: all). A variant that
            differs only in WHATSAT's HTTP client has nothing to show elsewhere.
        log_level: the servers' ``--log-level`` (``None``: the run's, ``warning``
            unless told).
        faults: takes part in the faults workload, which needs ``--state-dir``
            and minutes per implementation: the two herds the issue compares.
    """

    name: str
    module: str
    args: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    default: bool = True
    workloads: tuple[str, ...] = ()
    log_level: str | None = None
    faults: bool = False

    def runs(self, workload: str) -> bool:
        """Whether it takes part in ``workload``."""
        if workload == "faults":
            return self.faults
        return not self.workloads or workload in self.workloads

    def command(self) -> list[str]:
        """The words after ``python``."""
        return ["-m", self.module, *self.args]

    def unavailable(self) -> str | None:
        """Why it cannot run here (a module does not import), or ``None``."""
        for module in (self.module, *self.requires):
            try:
                importlib.import_module(module)
            except Exception as exc:  # any import failure means: skip it
                return f"{module} is not importable ({type(exc).__name__}: {exc})"
        return None


_STATE_DIR = os.path.join(tempfile.gettempdir(), f"trioherd-bench-state-{os.getpid()}")

_MEASURED = (
    Implementation("trio", "trioherd", faults=True),
    Implementation("asyncio", "bench.asyncio_herd", faults=True),
    Implementation("uvloop", "bench.asyncio_herd", ("--uvloop",), requires=("uvloop",)),
    # asyncio at its fastest: clients on asyncio.Protocol callbacks.
    Implementation("asyncio-protocol", "bench.asyncio_herd.protocol"),
    # One I/O layer on anyio, on each of the loops above: what portability costs.
    Implementation("anyio-trio", "bench.anyio_herd", ("--backend", "trio")),
    Implementation("anyio-asyncio", "bench.anyio_herd", ("--backend", "asyncio")),
    # On demand: anyio on uvloop says little that anyio-asyncio and uvloop
    # do not, and the full run must fit in under an hour.
    Implementation(
        "anyio-uvloop",
        "bench.anyio_herd",
        ("--backend", "asyncio", "--uvloop"),
        requires=("uvloop",),
        default=False,
    ),
    # trioherd on trio.SocketStream rather than its LeanStream: what the
    # lean stream gains, on demand.
    Implementation("trio-socketstream", "bench.trio_socketstream", default=False),
    # trioherd whose replies do not wait for their flood's first hop to be
    # written: what the first hop before the reply costs (IAMAT only, where
    # it shows).
    Implementation("trio-nopush", "bench.trio_nopush", workloads=("iamat",)),
    # trioherd with trio's run loop never reversing a batch (asyncio's
    # first come, first served): how much of trio's latency spread at
    # many connections is its scheduling policy, on demand.
    Implementation("trio-noreverse", "bench.trio_noreverse", workloads=("iamat",), default=False),
    # trioherd with one more run-loop pass between a read and its handling
    # (asyncio's streams have it): whether a third pass per request steadies
    # trio's service at many connections, on demand.
    Implementation("trio-yield", "bench.trio_yield", workloads=("iamat",), default=False),
    Implementation(
        "trio-yield-noreverse",
        "bench.trio_yield",
        ("--strict",),
        workloads=("iamat",),
        default=False,
    ),
    # WHATSAT's HTTP on httpx's stock transport (httpcore, h11,
    # trio.SocketStream) rather than our LeanTransport.
    Implementation(
        "trio-httpx-stock", "trioherd", ("--places-transport", "httpx"), workloads=("whatsat",)
    ),
    # Each herd with no CPU turn before shaping a WHATSAT's answer
    # (bench/noturn.py): what the turn costs each, on demand.
    Implementation("trio-noturn", "bench.noturn", ("trio",), workloads=("whatsat",), default=False),
    Implementation(
        "asyncio-noturn",
        "bench.noturn",
        ("asyncio",),
        workloads=("whatsat",),
        default=False,
    ),
    # The control: the asyncio herd with httpx instead of aiohttp, so the
    # gap splits into the HTTP library's part and the event loop's.
    Implementation(
        "asyncio-httpx",
        "bench.asyncio_herd",
        ("--places-transport", "httpx"),
        workloads=("whatsat",),
    ),
)

IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl
    for impl in (
        *_MEASURED,
        # What a user running the defaults gets: every line in and out
        # logged. In the workloads where logging costs most (a line per
        # IAMAT, and per flooded AT line), beside the quiet runs.
        *(
            dataclasses.replace(
                impl,
                name=f"{impl.name}+logs",
                log_level="info",
                workloads=LOGGED_WORKLOADS,
                default=impl.name in LOGGED_IMPLEMENTATIONS,
                faults=False,
            )
            for impl in _MEASURED
            if impl.name in LOGGED_IMPLEMENTATIONS or impl.name.startswith(("uvloop", "anyio"))
        ),
        # With durable state (--state-dir): what journaling costs (IAMAT).
        # The journals go to a directory of this benchmark process's own.
        Implementation(
            "trio-durable",
            "trioherd",
            ("--state-dir", f"{_STATE_DIR}/trio"),
            workloads=("iamat",),
        ),
        Implementation(
            "asyncio-durable",
            "bench.asyncio_herd",
            ("--state-dir", f"{_STATE_DIR}/asyncio"),
            workloads=("iamat",),
        ),
        # trioherd and the anyio herd (on trio) whose links never write a
        # record at once from the task that queued it (bench/batched.py):
        # what the write at once costs or saves each, on demand.
        Implementation(
            "trio-batched", "bench.batched", ("trio",), workloads=("iamat",), default=False
        ),
        Implementation(
            "anyio-trio-batched",
            "bench.batched",
            ("anyio", "--backend", "trio"),
            workloads=("iamat",),
            default=False,
        ),
    )
}

#: What ``python -m bench`` runs unless told otherwise.
DEFAULT_IMPLEMENTATIONS = [name for name, impl in IMPLEMENTATIONS.items() if impl.default]
