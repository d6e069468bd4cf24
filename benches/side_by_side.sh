#!/usr/bin/env bash
# Runs every standard workload of BENCHMARK.md with our `bench` example and with the peers'
# benchmark programs, one workload at a time (ours, then each peer, same conditions), and prints
# one markdown table with the ratio of our best to the best peer's best (each side at its
# best of 1 and 2 threads).
#
#   MNIST_DIR=/path/to/mnist benches/side_by_side.sh PEERS_DIR
#
# PEERS_DIR is a writable copy of shared/peers (its rust/<peer>-bench programs are built here
# unless SKIP_BUILD=1). Options (environment):
#   PEERS="candle dfdx burn"  Rust peers to run (default all three)
#   THREADS="1 2"             thread counts (RAYON_NUM_THREADS, MATMUL_NUM_THREADS, --threads)
#   RUNS=3                    epochs (fresh network each) per training figure, median taken
#   WORKLOADS="..."           subset, e.g. "w1-b32-sgd w1-predict" (names as in the table)
#   TORCH_PY=/path/python     a Python with torch and numpy: adds PyTorch (PEERS_DIR/torch/one.py
#                             for training, bench.py for inference; benches/torch/bench.py
#                             stands in where PEERS_DIR lacks bench.py)
# Raw output goes to side_by_side-<time>.log in the current directory.
set -euo pipefail
PEERS_DIR=$(cd "${1:?usage: MNIST_DIR=... $0 PEERS_DIR}" && pwd)
: "${MNIST_DIR:?set MNIST_DIR to the folder holding the MNIST *-ubyte.gz files}"
MNIST_DIR=$(cd "$MNIST_DIR" && pwd)
export MNIST_DIR
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-"candle dfdx burn"}
THREADS=${THREADS:-"1 2"}
RUNS=${RUNS:-3}
ALL="w1-b32-sgd w1-b32-adam w1-b128-sgd w1-b128-adam w2-b128-sgd w2-b128-adam w1-predict w1-infer1000"
WORKLOADS=${WORKLOADS:-$ALL}
LOG=$PWD/side_by_side-$(date +%Y%m%d-%H%M%S).log
RES=$(mktemp)
trap 'rm -f "$RES"' EXIT

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$LOG"
(cd "$ROOT" && cargo build --release --quiet --example bench)
OURS=$ROOT/target/release/examples/bench
if [ -z "${SKIP_BUILD:-}" ]; then
  for p in $PEERS; do (cd "$PEERS_DIR/rust/$p-bench" && cargo build --release --quiet); done
fi
TORCH=""
if [ -n "${TORCH_PY:-}" ]; then
  # The shared peers folder of 2026-11-29 lacks torch/bench.py (its one.py imports it): use
  # our reconstruction from BENCHMARK.md's text, benches/torch/bench.py, in its place.
  [ -f "$PEERS_DIR/torch/bench.py" ] || cp "$ROOT/benches/torch/bench.py" "$PEERS_DIR/torch/bench.py"
  TORCH=torch
fi
# torch_infer THREADS KEY: PyTorch's infer1 latency or infer1000 throughput.
torch_infer() {
  (cd "$PEERS_DIR/torch" && "$TORCH_PY" bench.py --mode infer --threads "$1" --runs "$RUNS") \
    | tee -a "$LOG" | sed -n "s/.*$2=//p"
}

# record WORKLOAD WHO THREADS VALUE
record() { echo "$1 $2 $3 $4" >> "$RES"; echo "$1 $2 T$3: $4" | tee -a "$LOG"; }
last() { tail -n 1 | sed 's/^[a-z_]*=//'; }
# field KEY: the value of KEY=... in a peer's RESULT line on stdin
field() { grep '^RESULT' | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }

ours() { # WORKLOAD THREADS ARGS...
  local w=$1 t=$2; shift 2
  record "$w" ours "$t" "$(NN_MNIST_DIR=$MNIST_DIR "$OURS" --threads "$t" "$@" 2>>"$LOG" | tee -a "$LOG" | last)"
}
peer_env() { env RAYON_NUM_THREADS="$1" MATMUL_NUM_THREADS="$1" OMP_NUM_THREADS="$1" "${@:2}"; }

for w in $WORKLOADS; do
  IFS=- read -r net b opt <<< "$w"
  for t in $THREADS; do
    case $b in
      predict)
        ours "$w" "$t" --net "$net" --mode infer1
        for p in $PEERS; do
          record "$w" "$p" "$t" "$(peer_env "$t" "$PEERS_DIR/rust/$p-bench/target/release/$p-bench" \
            --mode infer --reps 3 --calls 10000 | tee -a "$LOG" | grep 'mode=infer1 ' | field lat_us_med)"
        done
        if [ -n "$TORCH" ]; then record "$w" torch "$t" "$(torch_infer "$t" latency_us)"; fi ;;
      infer1000)
        ours "$w" "$t" --net "$net" --mode infer1000 --epochs "$RUNS"
        for p in $PEERS; do
          record "$w" "$p" "$t" "$(peer_env "$t" "$PEERS_DIR/rust/$p-bench/target/release/$p-bench" \
            --mode infer --reps 3 --calls 10000 | tee -a "$LOG" | grep 'mode=infer1000 ' | field sps_med)"
        done
        if [ -n "$TORCH" ]; then record "$w" torch "$t" "$(torch_infer "$t" samples_per_s)"; fi ;;
      *)
        bs=${b#b}
        ours "$w" "$t" --net "$net" --batch "$bs" --opt "$opt" --epochs "$RUNS"
        for p in $PEERS; do
          record "$w" "$p" "$t" "$(peer_env "$t" "$PEERS_DIR/rust/$p-bench/target/release/$p-bench" \
            --mode train --net "$net" --batch "$bs" --opt "$opt" --reps "$RUNS" | tee -a "$LOG" | field sps_med)"
        done
        if [ -n "$TORCH" ]; then
          record "$w" torch "$t" "$(cd "$PEERS_DIR/torch" && "$TORCH_PY" one.py --net "${net^^}" \
            --opt "$([ "$opt" = sgd ] && echo SGD || echo Adam)" --batch "$bs" --threads "$t" --runs "$RUNS" \
            | tee -a "$LOG" | last)"
        fi ;;
    esac
  done
done

# The table: one column per (who, threads); ratio = our best / best peer's best (for latency,
# best peer / ours), so > 1 means we are faster.
awk -v threads="$THREADS" -v who="ours $PEERS $TORCH" -v order="$WORKLOADS" '
  { v[$1, $2, $3] = $4 }
  END {
    nt = split(threads, T, " "); nw = split(who, W, " "); no = split(order, O, " ")
    h = "| workload |"; s = "|---|"
    for (i = 1; i <= nw; i++) for (j = 1; j <= nt; j++) { h = h " " W[i] " T" T[j] " |"; s = s "---|" }
    print h " ours / best peer |"; print s "---|"
    for (o = 1; o <= no; o++) {
      w = O[o]; lat = (w ~ /predict/); row = "| " w (lat ? " (µs)" : " (samples/s)") " |"
      ours = ""; peer = ""
      for (i = 1; i <= nw; i++) for (j = 1; j <= nt; j++) {
        x = v[w, W[i], T[j]]; row = row " " x " |"
        if (x == "") continue
        if (W[i] == "ours") { if (ours == "" || (lat ? x + 0 < ours : x + 0 > ours)) ours = x + 0 }
        else if (peer == "" || (lat ? x + 0 < peer : x + 0 > peer)) peer = x + 0
      }
      r = (ours == "" || peer == "" || ours == 0) ? "" : sprintf("%.2fx", lat ? peer / ours : ours / peer)
      print row " " r " |"
    }
  }' "$RES" | tee -a "$LOG"
echo "raw output: $LOG"
