import pytest

from bench.syscalls import parse_strace_summary, per_whatsat

SUMMARY = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 40.00    0.400000          10       400           sendto
 30.00    0.300000           5       600       200 recvfrom
 30.00    0.300000           3       100           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    1.000000           9      1100       200 total
"""


def test_the_summary_table_is_read_call_by_call() -> None:
    assert parse_strace_summary(SUMMARY) == {"sendto": 400, "recvfrom": 600, "epoll_wait": 100}


def test_two_sends_make_one_whatsat() -> None:
    each = per_whatsat(parse_strace_summary(SUMMARY))
    assert each == {"sendto": 2.0, "recvfrom": 3.0, "epoll_wait": 0.5}
    with pytest.raises(ValueError, match="no sends"):
        per_whatsat({"epoll_wait": 5})
