#!/usr/bin/env bash
# Start or stop a 3-master Redis Cluster on loopback for the test suite.
#   .ci/cluster.sh start DIR   -> prints the seed addresses (a,b,c)
#   .ci/cluster.sh stop DIR    -> stops the nodes started in DIR, by PID
# Ports: HOPPER_CLUSTER_BASE_PORT (default 7101) .. +2.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?state directory}
base=${HOPPER_CLUSTER_BASE_PORT:-7101}
ports=("$base" "$((base + 1))" "$((base + 2))")

case "$cmd" in
start)
  mkdir -p "$dir"
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    (cd "$dir/$p" && redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --save "" --appendonly no --daemonize yes \
      --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log")
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  addrs=()
  for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1
  for _ in $(seq 1 100); do
    ok=1
    for p in "${ports[@]}"; do
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 0.1
  done
  [ "$ok" = 1 ] || { echo "cluster did not become ready" >&2; cat "$dir/create.log" >&2; exit 1; }
  (IFS=,; echo "${addrs[*]}")
  ;;
stop)
  pids=()
  for p in "${ports[@]}"; do
    if [ -f "$dir/$p/redis.pid" ]; then
      pid=$(cat "$dir/$p/redis.pid")
      if kill "$pid" 2>/dev/null; then pids+=("$pid"); fi
    fi
  done
  # Wait for the nodes to exit: they write their logs while shutting down,
  # and the caller removes DIR next.
  for pid in ${pids[@]+"${pids[@]}"}; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
