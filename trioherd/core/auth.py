"""Proving a peer link knows the herd secret, with no I/O.

The handshake (docs/peer-protocol.md, "Authentication") is three lines
on the link, each side contributing a fresh nonce::

    initiator -> responder   PEER <I> 1 nonce=<Ni>
    responder -> initiator   PEER <R> 1 nonce=<Nr> proof=<MAC("responder")>
    initiator -> responder   PROOF <MAC("initiator")>

where ``MAC(role)`` is HMAC-SHA256 under the secret over the role, both
names and both nonces. The responder proves itself over the initiator's
fresh nonce and the initiator over the responder's, so neither proof from a
recorded handshake is any use in another: the other side's nonce will
differ. The role in the MAC keeps one side's proof from being reflected
back as the other's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable

#: Random bytes in a nonce (sent as twice as many hex digits).
NONCE_BYTES = 16
#: What a nonce or a proof looks like on the wire: lower-case hex.
_NONCE = re.compile(rb"[0-9a-f]{%d}" % (2 * NONCE_BYTES))
_PROOF = re.compile(rb"[0-9a-f]{64}")
#: Ties a MAC to this protocol and version, so it means nothing elsewhere.
_CONTEXT = b"trioherd peer handshake v1"

INITIATOR = b"initiator"
RESPONDER = b"responder"


def new_nonce() -> bytes:
    """A fresh nonce, as it goes on the wire."""
    return secrets.token_hex(NONCE_BYTES).encode()


NonceSource = Callable[[], bytes]


def is_nonce(value: bytes) -> bool:
    """Whether ``value`` is a well-formed nonce."""
    return _NONCE.fullmatch(value) is not None


def proof(
    secret: bytes,
    role: bytes,
    initiator: bytes,
    responder: bytes,
    initiator_nonce: bytes,
    responder_nonce: bytes,
) -> bytes:
    """The MAC that side ``role`` sends, as hex."""
    # Fields are separated by a byte no name or nonce can hold.
    message = b"\0".join((_CONTEXT, role, initiator, responder, initiator_nonce, responder_nonce))
    return hmac.new(secret, message, hashlib.sha256).hexdigest().encode()


def proof_holds(
    secret: bytes,
    claimed: bytes,
    role: bytes,
    initiator: bytes,
    responder: bytes,
    initiator_nonce: bytes,
    responder_nonce: bytes,
) -> bool:
    """Whether ``claimed`` is the right proof, compared in constant time."""
    if _PROOF.fullmatch(claimed) is None:
        return False
    expected = proof(secret, role, initiator, responder, initiator_nonce, responder_nonce)
    return hmac.compare_digest(claimed, expected)
