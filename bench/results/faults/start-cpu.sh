#!/bin/bash
# start-cpu.txt: CPU (user, system) and wall seconds to import each herd's
# command line module, before (BEFORE: a tree at 96c5327, prometheus_client
# imported at start) and after 436cc6e (imported only with --metrics-port),
# interleaved, 8 rounds. Usage: BEFORE=DIR bash bench/results/faults/start-cpu.sh
for i in $(seq 8); do
  for t in before after; do
    if [ $t = after ]; then D=$(pwd); else D=$BEFORE; fi
    for m in trioherd.cli bench.asyncio_herd.cli; do
      (cd "$D" && PYTHONPATH=$D /usr/bin/time -f "$t $m %U %S %e" python -c "import $m") 2>&1
    done
  done
done
