#!/bin/bash
# The README's first command (after the install) over seeds 0-4 with the Inductor cache as it
# is, then seed 0 with an empty cache (the very first run on a machine): the wall time of the
# whole command and the error in report.json (docs/benchmarks.md section 5.3).
#   bash scripts/first_run.sh [OUTDIR]      (run with nothing else on the machine)
set -e
cd "$(dirname "$0")/.."
out=${1:-/tmp/pinnkit-first-run}
report() {
  python -c "import json, sys; r = json.load(open(sys.argv[1] + '/report.json')); \
print(sys.argv[2], 'wall %.1f s' % (float(sys.argv[4]) - float(sys.argv[3])), \
'training %.1f s' % r['train']['seconds'], \
'l2re_exact %.3e' % r['metrics']['u']['l2re_exact'])" "$@"
}
for seed in 0 1 2 3 4; do
  s=$(date +%s.%N)
  python scripts/solve.py problems/burgers.py --seed $seed --out "$out/seed$seed" --quiet
  e=$(date +%s.%N)
  report "$out/seed$seed" "seed $seed (cache as is)" "$s" "$e"
done
cache=$(mktemp -d)
s=$(date +%s.%N)
TORCHINDUCTOR_CACHE_DIR="$cache" python scripts/solve.py problems/burgers.py --seed 0 \
  --out "$out/cold" --quiet
e=$(date +%s.%N)
report "$out/cold" "seed 0 (empty cache)" "$s" "$e"
rm -rf "$cache"
