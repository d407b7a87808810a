#!/bin/bash
# python -m bench --quick, N times in a row (default 5), each into a scratch
# directory; prints one line per run: exit status, seconds, FAILED rows and
# "already in use" errors. Run from the repository's root:
#     bash bench/results/quick-repeat/repeat.sh [N]
# It checks that the quick run is repeatable; its timings are not figures.
set -u
scratch=$(mktemp -d -t trioherd-quick-repeat-XXXX)
for i in $(seq 1 "${1:-5}"); do
  start=$(date +%s)
  python -m bench --quick --no-plots --out "$scratch/run$i" > "$scratch/run$i.stdout" 2> "$scratch/run$i.stderr"
  rc=$?
  in_use=$(cat "$scratch/run$i.stderr" "$scratch/run$i/results.json" 2>/dev/null | grep -ci 'already in use')
  echo "run $i: exit $rc, $(( $(date +%s) - start )) s, $(grep -c FAILED "$scratch/run$i.stdout") FAILED rows, 'already in use': $in_use"
done
echo "outputs in $scratch"
