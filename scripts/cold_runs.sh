#!/usr/bin/env bash
# Cold runs in a row, each into a fresh root with a private, empty $TMPDIR: counts failures and
# anything a run leaves in $TMPDIR or under <root>/tmp. Issue 9's random failure (TFX's per-node
# sdist build chdir-ing the process while other nodes ran) showed as about one failed run in six.
#
#   scripts/cold_runs.sh N [PIPELINE] [extra `beamline run` args...]   (default: penguin --no-tune)
set -uo pipefail
cd "$(dirname "$0")/.."
N="${1:-20}"; PIPELINE="${2:-penguin}"; shift $(( $# > 2 ? 2 : $# ))
EXTRA=("$@"); [[ ${#EXTRA[@]} -eq 0 ]] && EXTRA=(--no-tune)
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/cold-runs.XXXXXX")"
ok=0; failed=0; leaks=0
for i in $(seq 1 "$N"); do
  root="$SCRATCH/root-$i"; tmp="$SCRATCH/tmp-$i"; mkdir -p "$tmp"
  start=$(date +%s)
  TMPDIR="$tmp" .venv/bin/beamline run "$PIPELINE" --root "$root" "${EXTRA[@]}" \
    >"$SCRATCH/run-$i.out" 2>&1
  code=$?
  left=$(find "$tmp" -mindepth 1 -maxdepth 1 | wc -l)
  [[ -d "$root/tmp" ]] && left=$(( left + $(find "$root/tmp" -mindepth 1 | wc -l) ))
  if [[ $code -eq 0 ]]; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
  [[ $left -gt 0 ]] && leaks=$((leaks + 1))
  echo "run $i: exit $code, $(( $(date +%s) - start )) s, $left leftover(s) in TMPDIR/<root>/tmp"
  [[ $code -eq 0 ]] && rm -rf "$root" "$tmp"
done
echo "cold runs: $N, ok $ok, failed $failed, runs leaving temp files $leaks (kept: $SCRATCH)"
[[ $failed -eq 0 && $leaks -eq 0 ]]
