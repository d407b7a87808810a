"""TLS on a herd's port and links (--tls-cert, --tls-key, --tls-ca), per implementation.

Each case runs three servers: Hill and Jaquez in one process, with
certificates from the herd's CA, and Smith, Hill's other neighbour, in
another, with a certificate from a CA nobody trusts, as a stranger would have.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
import trio
import trustme

from bench.procs import Herd
from trioherd.client import exchange_tls
from trioherd.core.tls import PLAIN, TlsFiles, client_context
from trioherd.options import parse_options

from support import WAIT, eventually

#: The asyncio herd's Protocol variant shares the stream server's TLS (ssl=
#: on create_server, the same links) and is left out to keep the suite short.
IMPLEMENTATIONS = ["trioherd", "bench.asyncio_herd", "bench.anyio_herd"]
UCLA = b"+34.068930-118.445127"


def write_certificate(ca: trustme.CA, directory: Path) -> list[str]:
    """A certificate for 127.0.0.1 from ``ca``, in ``directory``; the options that use it."""
    directory.mkdir()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(ca_file)]


async def plain_text_is_refused(address: tuple[str, int]) -> bool:
    """Whether a plain-text IAMAT to ``address`` is answered by a closed connection, no AT."""
    with trio.fail_after(WAIT):
        stream = await trio.open_tcp_stream(*address)
        async with stream:
            await stream.send_all(b"IAMAT plain " + UCLA + b" 1\n")
            received = b""
            try:
                while chunk := await stream.receive_some(65536):
                    received += chunk
            except trio.BrokenResourceError:
                pass  # reset: refused all the same
    return b"AT " not in received


@pytest.mark.parametrize("module", IMPLEMENTATIONS)
async def test_tls_clients_and_links(tmp_path: Path, module: str) -> None:
    if "anyio" in module:
        pytest.skip("the anyio herd has no TLS (bench/anyio_herd/NOTES.md)")
    herd_ca, stranger_ca = trustme.CA(), trustme.CA()
    good = write_certificate(herd_ca, tmp_path / "herd")
    bad = write_certificate(stranger_ca, tmp_path / "stranger")
    herd = Herd(["-m", module], ["Hill", "Jaquez", "Smith"], tmp_path, label=module)
    context = client_context(tmp_path / "herd" / "ca.pem")
    try:
        # Hill and Jaquez in one process, Smith in another, started together.
        herd.spawn("Hill", *good, command=["-m", module, "Jaquez"])
        herd.spawn("Smith", *bad)
        await herd.servers["Hill"].wait_listening(herd.ports["Hill"])
        await herd.servers["Hill"].wait_listening(herd.ports["Jaquez"])
        await herd.servers["Smith"].wait_listening(herd.ports["Smith"])
        hill, jaquez = herd.address("Hill"), herd.address("Jaquez")

        iamat = b"IAMAT kiwi " + UCLA + b" 1700000000.5\n"
        with trio.fail_after(WAIT):
            reply = await exchange_tls(hill, iamat, context)
        assert reply.startswith(b"AT Hill +"), reply
        at_line = reply.rstrip(b"\n")

        async def flooded() -> bool:
            # Over the TLS link from Hill to Jaquez.
            with trio.fail_after(WAIT):
                answer = await exchange_tls(jaquez, b"WHATSAT kiwi 10 1\n", context)
            return answer.split(b"\n", 1)[0] == at_line

        await eventually(flooded, "the IAMAT to reach Jaquez")

        assert await plain_text_is_refused(hill)
        # A client that does not trust the server's CA refuses it in turn.
        with trio.fail_after(WAIT), pytest.raises(OSError, match="certificate verify failed"):
            await exchange_tls(herd.address("Smith"), iamat, context)
        # And Hill still serves.
        with trio.fail_after(WAIT):
            assert (await exchange_tls(hill, iamat, context)).startswith(b"AT Hill +")

        hill_log = herd.log_dir / "Hill.log"

        async def stranger_refused() -> bool:
            text = hill_log.read_text(errors="replace") if hill_log.exists() else ""
            return bool(re.search(r"link to Smith: .*certificate verify failed", text))

        # Smith's certificate does not chain to the herd's CA: Hill's link
        # to it is refused, and the log says why.
        await eventually(stranger_refused, "Hill to log that Smith's certificate failed")
    finally:
        await herd.stop()
    for name in ("Hill", "Smith"):
        stderr = (tmp_path / f"{name}.stderr").read_text()
        assert "Traceback" not in stderr, stderr


def test_tls_files_come_from_the_command_line_or_the_toml(tmp_path: Path) -> None:
    options = write_certificate(trustme.CA(), tmp_path / "tls")
    config = tmp_path / "herd.toml"
    config.write_text(
        'tls_cert = "tls/cert.pem"\ntls_key = "tls/key.pem"\ntls_ca = "tls/ca.pem"\n'
        "[servers.Solo]\nport = 0\n"
    )
    from_toml = parse_options(["Solo", "--config", str(config)], "test").tls
    assert from_toml == TlsFiles(*(tmp_path / "tls" / f for f in ("cert.pem", "key.pem", "ca.pem")))
    from_flags = parse_options(["Hill", *options], "test").tls
    assert from_flags == from_toml
    contexts = from_flags.contexts()
    assert contexts.server is not None
    assert contexts.links is not None
    assert contexts.links.verify_mode == ssl.CERT_REQUIRED
    assert contexts.links.check_hostname
    assert parse_options(["Hill"], "test").tls.contexts() == PLAIN


@pytest.mark.parametrize(
    ("words", "error"),
    [
        (["--tls-cert", "{cert}"], "give a TLS certificate and its key together"),
        (["--tls-cert", "{key}", "--tls-key", "{key}"], "cannot load TLS certificate"),
        (["--tls-ca", "{missing}"], "cannot load TLS CA file"),
    ],
)
def test_bad_tls_options_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], words: list[str], error: str
) -> None:
    write_certificate(trustme.CA(), tmp_path / "tls")
    files = {"cert": "cert.pem", "key": "key.pem", "missing": "nowhere.pem"}
    argv = [w.format(**{k: str(tmp_path / "tls" / v) for k, v in files.items()}) for w in words]
    with pytest.raises(SystemExit) as exited:
        parse_options(["Hill", *argv], "test")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert error in err, err
    assert err.count("\n") == 1, err
