from bench.profile import by_place, place, summarise_speedscope

LOOP = "main (bench/anyio_herd/cli.py:88);run (trio/_core/_run.py:2532)"
TASK = "HerdServer._converse (bench/anyio_herd/server.py:147)"


def test_frames_are_placed_by_the_path_py_spy_shows() -> None:
    assert place("receive (anyio/_backends/_trio.py:490)") == "anyio"
    assert place("handle (trioherd/core/state.py:124)") == "trioherd.core (shared)"
    assert place("_run_once (asyncio/base_events.py:1922)") == "asyncio"
    assert place("<module> (<frozen runpy>:198)").startswith("other")


def test_self_and_below_the_herd_shares() -> None:
    raw = "\n".join(
        [
            f"{LOOP};{TASK};receive (anyio/_backends/_trio.py:490);recv (trio/_socket.py:1) 3",
            f"{LOOP};{TASK};handle (trioherd/core/state.py:124) 1",
        ]
    )
    lines = by_place(raw)
    shares = {line[:40].strip(): line[40:].split() for line in lines[1:]}
    # Self: where the innermost frame is. Below the herd: the loop that
    # runs the task does not count, what the task calls does.
    assert shares["trio"] == ["75.0%", "75.0%"]
    assert shares["anyio"] == ["0.0%", "75.0%"]
    assert shares["bench.anyio_herd"] == ["0.0%", "100.0%"]
    assert shares["trioherd.core (shared)"] == ["25.0%", "25.0%"]


def test_a_speedscope_profile_is_summarised_without_its_idle_samples() -> None:
    frames = [
        {"name": "main", "file": "/x/trioherd/cli.py"},
        {"name": "epoll_wait", "file": "<native>"},
        {"name": "loads", "file": "/usr/lib/python3.12/json/__init__.py"},
    ]
    profile = {"samples": [[0, 1], [0, 2], [0, 2]], "weights": [5.0, 1.0, 1.0]}
    text = summarise_speedscope({"shared": {"frames": frames}, "profiles": [profile]}, 5)
    assert text.startswith("busy time sampled: 2.00 s")
    assert "100.0%  trioherd" in text
    assert "100.0%  loads (stdlib:__init__.py)" in text
    assert "epoll_wait" not in text
