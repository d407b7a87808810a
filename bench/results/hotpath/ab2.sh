set -e
out=bench/results/hotpath/ab2; mkdir -p $out
base=/tmp/hotpath-base; py=/work/venv/bin/python
for round in 1 2 3 4 5; do
  for tree in base new; do
    if [ "$tree" = base ]; then root=$base; else root=$PWD; fi
    (cd "$root" && PYTHONPATH=$root $py -m bench.sched_trace --impl trio --seconds 3 \
      --out "$OLDPWD/$out/trace-$tree-$round.json") > "$out/trace-$tree-$round.txt" 2>&1
  done
done
