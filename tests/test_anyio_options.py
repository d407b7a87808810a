"""The anyio herd's own flags: --backend, and --uvloop only on asyncio."""

import pytest

from trioherd.options import parse_options

PROG = "python -m bench.anyio_herd"


def test_backend_defaults_to_trio_and_uvloop_means_asyncio() -> None:
    assert parse_options(["Hill"], PROG, "anyio").backend == "trio"
    assert parse_options(["Hill", "--backend", "asyncio"], PROG, "anyio").backend == "asyncio"
    on_uvloop = parse_options(["Hill", "--uvloop"], PROG, "anyio")
    assert (on_uvloop.backend, on_uvloop.uvloop) == ("asyncio", True)


def test_uvloop_on_the_trio_backend_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_options(["Hill", "--backend", "trio", "--uvloop"], PROG, "anyio")
    assert exited.value.code == 2
    assert "--uvloop needs --backend asyncio" in capsys.readouterr().err


def test_only_the_anyio_herd_has_backend(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_options(["Hill", "--backend", "trio"], "python -m trioherd")
    assert "--backend" in capsys.readouterr().err
