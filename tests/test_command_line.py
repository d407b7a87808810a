"""What a newcomer and a script meet first: versions, exit codes, one-line errors."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

import bench.anyio_herd.cli
import bench.asyncio_herd.cli
import bench.asyncio_herd.places
import trioherd.cli
import trioherd.client
import trioherd.places
from trioherd import __version__
from trioherd.client import EXIT_REJECTED, rejected
from trioherd.herd import RunningHerd
from trioherd.offline.cache import LOADING_NOTE

from support import WAIT

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("main", "prog"),
    [
        (trioherd.cli.main, "trioherd"),
        (trioherd.client.main, "trioherd-client"),
        (bench.asyncio_herd.cli.main, "python -m bench.asyncio_herd"),
    ],
)
def test_version(main: object, prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert callable(main)
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"{prog} (trioherd {__version__})\n"


def test_help_names_the_console_script(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        trioherd.cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: trioherd ")


def test_rejected_replies_are_recognised() -> None:
    assert rejected(b"? IAMAT\n")
    assert rejected(b"AT Hill +0.1 a +1+1 1\n? nonsense\n")
    assert not rejected(b'AT Hill +0.1 a +1+1 1\n{\n   "results" : [ "? odd" ]\n}\n\n')


async def test_client_exits_3_when_a_message_is_rejected(herd: RunningHerd) -> None:
    host, port = herd.addresses["Hill"]
    with trio.fail_after(WAIT * 2):
        done = await trio.run_process(
            [sys.executable, "-m", "trioherd.client", f"{host}:{port}"],
            stdin=b"IAMAT ok +1+1 now\nWHATSAT nobody 10 5\n",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == EXIT_REJECTED
    # The replies are still printed: the AT line, then the rejection.
    assert done.stdout.startswith(b"AT Hill ")
    assert done.stdout.endswith(b"? WHATSAT nobody 10 5\n")


def test_asyncio_herd_without_the_bench_extra_says_what_to_install() -> None:
    # sys.modules[name] = None makes importing it fail as if not installed.
    code = (
        "import runpy, sys; sys.modules['aiohttp'] = None; "
        "runpy.run_module('bench.asyncio_herd', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "Hill"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "pip install -e '.[bench]'" in done.stderr


def test_a_log_dir_that_is_a_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    in_the_way = tmp_path / "logs"
    in_the_way.write_text("not a directory")
    assert trioherd.cli.main(["Hill", "--log-dir", str(in_the_way)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"trioherd: error: cannot use log directory {in_the_way}: "
        "a file is in the way, not a directory\n"
    )


def test_a_port_in_use_leaves_no_empty_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "herd.toml"
        config.write_text(
            f'[servers.Hill]\nport = 0\npeers = ["Jaquez"]\n[servers.Jaquez]\nport = {port}\n'
        )
        log_dir = tmp_path / "logs"
        status = trioherd.cli.main(["--all", "--config", str(config), "--log-dir", str(log_dir)])
    assert status == 1
    err = capsys.readouterr().err
    assert "address already in use" in err
    assert err.count("\n") == 1, err
    assert not log_dir.exists()


READY = re.compile(
    r"offline places index ready in \d+\.\d s: [\d,]+ places, "
    r"(read from its cache|built from GeoNames data, cache written to .+)"
)


async def test_the_first_start_says_when_the_index_is_ready() -> None:
    notes: list[str] = []
    await trioherd.places.OfflinePlaces().warm_up(notes.append)
    assert notes[0] == LOADING_NOTE
    assert READY.fullmatch(notes[1]), notes


def test_the_asyncio_herd_says_so_too() -> None:
    notes: list[str] = []
    asyncio.run(bench.asyncio_herd.places.OfflinePlaces().warm_up(notes.append))
    assert notes[0] == LOADING_NOTE
    assert READY.fullmatch(notes[1]), notes


@pytest.mark.parametrize(
    ("main", "prog"),
    [(trioherd.cli.main, "trioherd"), (bench.anyio_herd.cli.main, "python -m bench.anyio_herd")],
)
def test_a_metrics_port_in_use_is_a_one_line_error(
    main: Callable[[list[str]], int],
    prog: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "herd.toml"
    config.write_text("[servers.Hill]\nport = 0\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(
            [
                "Hill",
                "--config",
                str(config),
                "--log-dir",
                str(tmp_path / "logs"),
                "--metrics-port",
                str(port),
                "--places-url",
                "http://127.0.0.1:9/",
            ]
        )
    assert status == 1
    assert capsys.readouterr().err.endswith(
        f"{prog}: error: cannot listen on 127.0.0.1:{port}: address already in use\n"
    )
