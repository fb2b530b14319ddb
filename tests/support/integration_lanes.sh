#!/usr/bin/env bash
# The integration tier in two lanes at once (README "Tests"): each module still gets a Kafka
# broker and a PostgreSQL of its own, one module after another within a lane, and the two
# lanes use ports apart (WIMS_TEST_PORT_OFFSET 0 and 50 above the caller's), so the modules
# stay as isolated as when they ran one by one, in about half the time. Modules are dealt to
# the lanes longest first (measured durations below; a new module counts as 30 s), so both
# lanes end about together. Each line of output names its lane; the first failing module
# fails the tier, after both lanes have finished.
# Usage: integration_lanes.sh PYTHON [pytest args...]
set -uo pipefail
PY="$1"; shift
cd "$(dirname "$0")/../.."
base="${WIMS_TEST_PORT_OFFSET:-0}"

declare -A SECONDS_TAKEN=(
  [test_openapi_conformance]=175 [test_integrity_worker]=104 [test_api_rbac]=84
  [test_maasp_worker]=55 [test_ingest_service]=54 [test_api_crud]=41 [test_api_queries]=42
  [test_api_sse_scale]=33 [test_api_security]=35 [test_api_inputs]=34 [test_alarm_hygiene]=33
  [test_ingest_hostile]=32 [test_dead_letters_cli]=30 [test_api_outbox]=28 [test_tasks_worker]=60
  [test_tasks_crash]=40 [test_tasks_sweep]=30 [test_service_processes]=40
)
modules=()
for m in tests/integration/test_*.py; do
  name="$(basename "$m" .py)"
  modules+=("${SECONDS_TAKEN[$name]:-30} $m")
done
lane=( "" "" ); load=(0 0)
while read -r secs path; do
  i=0; (( load[1] < load[0] )) && i=1
  lane[i]+="$path "; load[i]=$(( load[i] + secs ))
done < <(printf '%s\n' "${modules[@]}" | sort -rn)

run_lane() {
  local n="$1" offset="$2" modules="$3" rc=0 module r; shift 3
  for module in $modules; do
    echo "== [lane $n] $module"
    WIMS_TEST_PORT_OFFSET="$offset" "$PY" -m pytest -m "not fault" "$module" "$@" 2>&1 \
      | sed -u "s/^/[lane $n] /"
    r=${PIPESTATUS[0]}
    if [ "$r" -ne 0 ] && [ "$r" -ne 5 ]; then rc=$r; echo "== [lane $n] FAILED: $module"; fi
  done
  return $rc
}
run_lane 1 "$base" "${lane[0]}" "$@" &
one=$!
run_lane 2 "$(( base + 50 ))" "${lane[1]}" "$@" &
two=$!
wait "$one"; rc1=$?
wait "$two"; rc2=$?
echo "== integration tier: lane 1 rc=$rc1, lane 2 rc=$rc2"
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ]
