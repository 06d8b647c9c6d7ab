#!/bin/bash
# The README's first command (after the install): seed 0 with an empty Inductor cache (the
# very first run on a machine), then seeds 0-4 with that cache warm: the wall time of the
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
# a cache of its own: kernels compiled before scripts/ came off sys.path are scalar
# (docs/benchmarks.md 5.7.1) and would be reused from the default cache
cache=$(mktemp -d)
export TORCHINDUCTOR_CACHE_DIR="$cache"
s=$(date +%s.%N)
python scripts/solve.py problems/burgers.py --seed 0 --out "$out/cold" --quiet
e=$(date +%s.%N)
report "$out/cold" "seed 0 (empty cache)" "$s" "$e"
for seed in 0 1 2 3 4; do
  s=$(date +%s.%N)
  python scripts/solve.py problems/burgers.py --seed $seed --out "$out/seed$seed" --quiet
  e=$(date +%s.%N)
  report "$out/seed$seed" "seed $seed (warm cache)" "$s" "$e"
done
rm -rf "$cache"
