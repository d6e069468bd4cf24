# Shared by run.sh and ci.sh (sourced): one fuzz run per target, and the summary.
#
# fuzz_target NAME LOG CMD...: runs CMD, a fuzz run of target NAME for $budget (seconds or
# executions), with its output in LOG; adds "NAME: N executions in Ss, C crashes" to `summary`
# and, if CMD failed (a crash, a timeout, the RSS limit), prints the log's tail and sets
# `failed=1`.
fuzz_target() {
  local t=$1 log=$2 status runs crashes=0 start elapsed
  shift 2
  echo "== fuzz $t for $budget"
  start=$(date +%s)
  set +e
  "$@" >"$log" 2>&1
  status=$?
  set -e
  elapsed=$(( $(date +%s) - start ))
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  if [ "$status" -ne 0 ]; then
    crashes=1
    failed=1
    tail -n 40 "$log"
  fi
  summary+=("$t: ${runs:-?} executions in ${elapsed}s, $crashes crashes (log: fuzz/$log)")
}
