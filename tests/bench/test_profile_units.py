from pathlib import Path

import pytest

from bench.profile_units import units


def test_units_divide_by_the_core_and_leave_out_system_calls(tmp_path: Path) -> None:
    folded = tmp_path / "hill.folded"
    folded.write_text(
        "\n".join(
            [
                # The ruler: 4 samples in the shared core.
                "run (x.py:1);whatsat_reply (trioherd/core/places.py:178) 4",
                # 2 in the HTTP client, under HttpPlaces.nearby.
                "run (x.py:1);HttpPlaces.nearby (trioherd/places.py:1);"
                "Request.__init__ (httpx/_models.py:399) 2",
                # Inside send(): left out.
                "run (x.py:1);LeanStream.send_all (trioherd/stream.py:184) 10",
            ]
        )
        + "\n"
    )
    figures = units(folded)
    assert figures["python"] == pytest.approx(1.5)
    assert figures["part: HTTP client"] == pytest.approx(0.5)
    assert figures["in HttpPlaces.nearby"] == pytest.approx(0.5)
    assert figures["in Request.__init__"] == pytest.approx(0.5)


def test_a_profile_without_the_core_is_refused(tmp_path: Path) -> None:
    folded = tmp_path / "empty.folded"
    folded.write_text("run (x.py:1);Request.__init__ (httpx/_models.py:399) 2\n")
    with pytest.raises(SystemExit):
        units(folded)
