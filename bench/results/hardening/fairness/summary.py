"""Sum up run.sh's rounds: min-max per implementation, before and after.

python bench/results/hardening/fairness/summary.py   (from the root; writes summary.json)
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
KEYS = ("during_s", "during_cpu_s", "burst_cpu_s", "after_s", "rss_growth_mb", "sigterm_s")


def main() -> None:
    summary: dict[str, object] = {"load_average_at_end": {}}
    for when in ("before", "after"):
        runs = sorted(HERE.glob(f"{when}-*.json"))
        table: dict[str, dict[str, list[float]]] = {}
        for run in runs:
            report = json.loads(run.read_text())
            summary["load_average_at_end"][run.name] = report["load_average_at_end"]  # type: ignore[index]
            for module, rounds in report["rounds"].items():
                for key in KEYS:
                    table.setdefault(module, {}).setdefault(key, []).extend(
                        r[key] for r in rounds if key in r
                    )
        summary[when] = {
            module: {key: [round(min(v), 3), round(max(v), 3)] for key, v in keys.items() if v}
            for module, keys in table.items()
        }
        summary[f"{when}_rounds"] = len(runs)
    text = json.dumps(summary, indent=2)
    (HERE / "summary.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
