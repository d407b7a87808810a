"""TLS for a herd's port and its peer links, the same on every event loop.

With ``--tls-cert FILE --tls-key FILE`` a server's port speaks only TLS, to
clients and to neighbours' links alike (one port serves both). With
``--tls-ca FILE`` our links to neighbours speak TLS and verify the
neighbour's certificate: it must chain to a CA in FILE and name the host the
herd's configuration gives for that neighbour. Both ends of a link need
their side: the neighbour its certificate, we the CA.

What it protects: the lines on the wire (client locations, the herd's
floods) from being read or changed in transit, and our links from talking
to a process that merely took over a neighbour's address. It does not say
who a client is (the course's protocol has no client identity), and a
neighbour's link into us is not asked for a certificate: that is what the
herd secret's handshake is for (docs/peer-protocol.md).

This module is loop-free: it builds :class:`ssl.SSLContext` objects from files; the
layers wrap their streams in them (``trio.SSLStream`` in :mod:`trioherd.stream`,
``ssl=`` on asyncio's ``start_server`` and ``open_connection``).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


class TlsError(Exception):
    """A TLS file is unusable; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where a server's TLS material is; any part may be missing."""

    #: This server's certificate chain (PEM) and private key: its port speaks TLS.
    cert: Path | None = None
    key: Path | None = None
    #: The CAs a neighbour's certificate must chain to: our links speak TLS.
    ca: Path | None = None

    @property
    def serving(self) -> bool:
        """Whether the server's port speaks TLS."""
        return self.cert is not None

    def server_context(self) -> ssl.SSLContext | None:
        """The context for accepted connections, or ``None`` for plain text.

        Raises:
            TlsError: the certificate or key cannot be loaded.
        """
        if self.cert is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(
                f"cannot load TLS certificate {self.cert} and key {self.key}: {_reason(exc)}"
            ) from None
        return context

    def contexts(self) -> TlsContexts:
        """Both contexts, loaded.

        Raises:
            TlsError: a file cannot be loaded.
        """
        return TlsContexts(self.server_context(), self.link_context())

    def link_context(self) -> ssl.SSLContext | None:
        """The context for our links to neighbours, or ``None`` for plain text.

        Raises:
            TlsError: the CA file cannot be loaded.
        """
        return None if self.ca is None else client_context(self.ca)


@dataclass(frozen=True, slots=True)
class TlsContexts:
    """What the layers wrap their streams in; ``None``: plain text on that side."""

    #: For accepted connections (clients and neighbours' links).
    server: ssl.SSLContext | None = None
    #: For our links to neighbours.
    links: ssl.SSLContext | None = None


def client_context(ca: Path) -> ssl.SSLContext:
    """A context that verifies a server's certificate against the CAs in ``ca``.

    Raises:
        TlsError: the file cannot be loaded.
    """
    # Only the CAs in the file, not the system's: a herd trusts its own CA.
    # PROTOCOL_TLS_CLIENT checks the chain and the host name.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load TLS CA file {ca}: {_reason(exc)}") from None
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)


#: No TLS anywhere: the course's plain-text herd.
NO_TLS = TlsFiles()
PLAIN = TlsContexts()
