#!/usr/bin/env bash
# make bench-dns: dnsperf against lodestar's DNS server on a 10,200-task Mesos state (1,000 apps
# of 10 tasks and one of 200, on 100 agents), 15 s each of A, SRV and NXDOMAIN queries over UDP
# with dnsperf's defaults; prints queries per second and average latency.
#
#   scripts/bench-dns.sh [path/to/lodestar]     (default bin/lodestar; LODESTAR=... works too)
#
# The server is `lodestar serve --mesos-state-file state.json --dns-listen 127.0.0.1:PORT`. A
# binary whose serve has no --dns-listen is replaced by dnsserver's generator serving the same
# names (go run ./dnsserver/internal/gen serve); SERVER=gen forces that. DURATION=seconds and
# DNSPERF_ARGS="-c 4 -T 2" change the runs.
#
# RRL= measures response-rate limiting (lodestar only; dnsperf's 127.0.0.1 is inside the default
# --dns-forward-allow, so by default it is accounted by nobody):
#   RRL=off      --dns-rrl-rate 0
#   RRL=outside  127.0.0.1 outside the allow list, at a rate no run reaches: every answer is
#                accounted, none limited (answers over 4x the query go truncated, as for any
#                outside client: the 10-address A answers do)
#   RRL=limit    127.0.0.1 outside the allow list at the default rate: most queries are dropped
#                or slipped; lodestar's RRL counters are printed after the runs
set -euo pipefail
cd "$(dirname "$0")/.."
lodestar=${1:-${LODESTAR:-bin/lodestar}}
duration=${DURATION:-15}
server=${SERVER:-auto}
command -v dnsperf >/dev/null || { echo "dnsperf is needed: apt-get install dnsperf"; exit 1; }
command -v dig >/dev/null || { echo "dig is needed: apt-get install dnsutils"; exit 1; }
command -v go >/dev/null || { echo "Go is needed (see make check-go)"; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/gen" ./dnsserver/internal/gen
"$work/gen" state -out "$work"
port=$("$work/gen" freeport)
api_port=$("$work/gen" freeport)
while [ "$api_port" = "$port" ]; do api_port=$("$work/gen" freeport); done
rrl=${RRL:-}
rrl_args=()
case $rrl in
'') ;;
off) rrl_args=(--dns-rrl-rate 0) ;;
outside) rrl_args=(--dns-forward-allow 192.0.2.1/32 --dns-rrl-rate 1000000) ;;
limit) rrl_args=(--dns-forward-allow 192.0.2.1/32) ;;
*) echo "RRL=$rrl: want off, outside or limit"; exit 1 ;;
esac

help=
if [ -x "$lodestar" ]; then
	help=$("$lodestar" serve -h 2>&1 || true)
fi
if [ "$server" = auto ]; then
	server=gen
	if grep -q -- '-dns-listen' <<<"$help"; then
		server=lodestar
	fi
fi
case $server in
lodestar)
	# DNS alone: HAProxy, when the binary can leave it out, would only take CPU from dnsperf.
	extra=()
	if grep -q -- '-haproxy$' <<<"$help"; then
		extra=(--haproxy=false)
	fi
	extra+=("${rrl_args[@]}")
	echo "server: $lodestar serve --mesos-state-file state.json --dns-listen 127.0.0.1:$port ${extra[*]}"
	"$lodestar" serve --mesos-state-file "$work/state.json" --dns-listen "127.0.0.1:$port" \
		--api-listen "127.0.0.1:$api_port" --run-dir "$work/run" "${extra[@]}" >"$work/server.log" 2>&1 &
	;;
gen)
	[ -z "$rrl" ] || { echo "RRL=$rrl needs lodestar serve"; exit 1; }
	echo "server: dnsserver/internal/gen serve (the same names, hand-built index; $lodestar cannot serve DNS)"
	"$work/gen" serve -listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
	;;
*)
	echo "SERVER=$server: want lodestar, gen or auto"; exit 1 ;;
esac
pid=$!

# Ready once a task name resolves (the first Mesos state is read and indexed); over TCP, which
# RRL leaves alone.
for _ in $(seq 1 300); do
	if [ -n "$(dig @127.0.0.1 -p "$port" +tcp +short +time=1 +tries=1 app-0.marathon.mesos A 2>/dev/null)" ]; then
		break
	fi
	kill -0 "$pid" 2>/dev/null || { echo "the server exited:"; cat "$work/server.log"; exit 1; }
	sleep 0.1
done
if [ -z "$(dig @127.0.0.1 -p "$port" +tcp +short app-0.marathon.mesos A)" ]; then
	echo "app-0.marathon.mesos has no address after 30s:"
	dig @127.0.0.1 -p "$port" +time=1 +tries=1 app-0.marathon.mesos A || true
	tail -20 "$work/server.log"
	exit 1
fi

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); dnsperf shares them"
printf '%-10s %12s %14s %10s\n' queries qps "avg latency" lost
for kind in a srv nxdomain; do
	# shellcheck disable=SC2086
	dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries-$kind.txt" -l "$duration" ${DNSPERF_ARGS:-} >"$work/dnsperf-$kind.txt" 2>&1 ||
		{ cat "$work/dnsperf-$kind.txt"; exit 1; }
	qps=$(awk '/Queries per second:/ {print $4}' "$work/dnsperf-$kind.txt")
	lat=$(awk '/Average Latency \(s\):/ {printf "%.0f µs", $4 * 1e6; exit}' "$work/dnsperf-$kind.txt")
	lost=$(awk '/Queries lost:/ {print $3 $4}' "$work/dnsperf-$kind.txt")
	printf '%-10s %12s %14s %10s\n' "$kind" "$qps" "$lat" "$lost"
done
if [ -n "$rrl" ]; then
	echo "lodestar's counters (RRL=$rrl):"
	curl -s "http://127.0.0.1:$api_port/metrics" | grep -E '^lodestar_dnsserver_(rrl_|outside_truncated)' || true
fi
