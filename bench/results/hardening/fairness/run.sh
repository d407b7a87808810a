#!/bin/sh
# Issue 12's fairness, before and after CPU turns (trioherd/turns.py), in
# interleaved rounds: round by round, the servers of main before the change
# (commit da612f8) and of this tree, each with the same probe
# (bench/attack_probe.py, which imports nothing of the herd's).
#
#     sh bench/results/hardening/fairness/run.sh [ROUNDS]     (from the root)
#
# Writes before-N.json and after-N.json here; summary.py sums them up.
set -eu
rounds=${1:-3}
here=bench/results/hardening/fairness
before=$(mktemp -d)
trap 'rm -rf "$before"' EXIT
git archive da612f8 | tar -x -C "$before"
root=$PWD
impls="trioherd bench.asyncio_herd bench.asyncio_herd.protocol"
# The servers run with `python -m` from the probe's working directory,
# which is where their code comes from.
for n in $(seq "$rounds"); do
    (cd "$before" && PYTHONPATH=$before python "$root/bench/attack_probe.py" --rounds 1 \
        --impls $impls --out "$root/$here/before-$n.json" >/dev/null)
    PYTHONPATH=$root python bench/attack_probe.py --rounds 1 --impls $impls \
        --out "$here/after-$n.json" >/dev/null
done
python "$here/summary.py"
