"""Resuming a peer link where it left off, with no I/O (docs/peer-protocol.md).

A link that connects used to owe the neighbour the whole table. With a
million clients that is a million lines, most of which the neighbour
already holds if it was away for a minute, or restarted with its journal.
So the two ends keep a bookmark:

* the sender's table numbers its stores (``LocationTable.seq``) within one
  life of the table (``LocationTable.epoch``);
* whenever the sender's outbox for a neighbour runs empty, it has handed
  over every record up to its current sequence number, and says so on the
  link: ``MARK <epoch> <seq>``;
* the receiver keeps the latest mark per neighbour (journaled with its
  records, so it outlives a restart); the sender's link asks, right after
  its handshake, with the line ``RESUME``, and the receiver answers
  ``RESUME <epoch> <seq>`` (or ``RESUME - 0`` with no mark). A link asks
  only a neighbour whose own link has asked us (so it is known to answer);
  any other is owed the whole table at once, as before;
* the sender then owes only the clients stored after ``seq``, if the epoch
  is its own; otherwise (it restarted: a new table life) the whole table.

A mark is journaled after the records that came before it on the link, so
a mark that survives a crash vouches only for records that survived too.
"""

from __future__ import annotations

from collections.abc import Callable

from trioherd.core.journal import Mark
from trioherd.core.table import LocationTable

#: What a link sends after its handshake to ask where to resume.
ASK = b"RESUME\n"
#: A receiver of the older protocol's answer to it.
ASK_REFUSED = b"? RESUME"


def mark_line(table: LocationTable) -> bytes:
    """``MARK <epoch> <seq>\\n``: everything up to now has been handed over."""
    return b"MARK %s %d\n" % (table.epoch, table.seq)


def parse_resume(line: bytes) -> tuple[bytes, int] | None:
    """The ``(epoch, seq)`` of a ``RESUME`` line, or ``None`` if it is not one."""
    fields = line.split()
    if len(fields) != 3 or fields[0] != b"RESUME" or not fields[2].isdigit():
        return None
    return fields[1], int(fields[2])


def owed_since(table: LocationTable, since: tuple[bytes, int] | None) -> list[bytes]:
    """The clients a neighbour that reached ``since`` is owed.

    ``None`` (an old-style neighbour, or no mark) and a mark from another
    life of the table both mean the whole table.
    """
    if since is not None and since[0] == table.epoch:
        return table.clients_since(since[1])
    return list(table.clients())


def _ignore(mark: Mark) -> None:
    pass


class Marks:
    """The latest mark of each neighbour's stream to us.

    The I/O layer sets :attr:`on_mark` to journal them, and :meth:`restore`
    puts back what the journal held.
    """

    __slots__ = ("_askers", "_marks", "on_mark")

    def __init__(self) -> None:
        self._marks: dict[str, Mark] = {}
        self.on_mark: Callable[[Mark], None] = _ignore
        # Neighbours whose links asked us RESUME: they will answer ours.
        self._askers: set[str] = set()

    def answers(self, peer: str) -> bool:
        """Whether ``peer`` speaks RESUME: its own link to us has asked.

        So has one whose mark we hold. Our link asks only such a neighbour,
        and waits for its answer; any other (an older server, a probe that
        only listens) is sent the whole table at once, as before.
        """
        # A neighbour that has sent us a mark (even one journaled before our
        # restart) has asked us before: a restarted server need not wait for
        # its link to ask again before asking it.
        return peer in self._askers or peer in self._marks

    def restore(self, mark: Mark) -> None:
        """Take a mark read back from the journal."""
        self._marks[mark.peer] = mark

    def all(self) -> list[Mark]:
        """Every neighbour's mark (for a journal snapshot)."""
        return list(self._marks.values())

    def resume_reply(self, peer: str) -> bytes:
        """``RESUME <epoch> <seq>\\n`` for ``peer``'s link, ``RESUME - 0`` if none."""
        self._askers.add(peer)
        mark = self._marks.get(peer)
        if mark is None:
            return b"RESUME - 0\n"
        return b"RESUME %s %d\n" % (mark.epoch, mark.seq)

    def receive(self, peer: str, fields: list[bytes]) -> bool:
        """Take a ``MARK`` line's fields from ``peer``'s link; ``False`` if malformed."""
        if len(fields) != 3 or not fields[2].isdigit() or not fields[1].isalnum():
            return False
        mark = Mark(peer, fields[1], int(fields[2]))
        self._marks[peer] = mark
        self.on_mark(mark)
        return True
