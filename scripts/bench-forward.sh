#!/usr/bin/env bash
# make bench-forward: dnsperf of DNS forwarding, in one run, against a local bind9 upstream on a
# loopback port (authoritative for example.test, 10,000 names):
#
#   upstream    bind9 asked directly
#   forward     lodestar forwarding to it, cache off (--dns-cache-size 0): every query goes upstream
#   before      the same with OLD=path/to/an/older/lodestar, when given
#   cached      lodestar with its cache, the same 100 names over and over
#   in-zone     lodestar's own zone (A queries of a generated 10,200-task Mesos state), for the
#               cached run's ratio
#
#   scripts/bench-forward.sh [path/to/lodestar]   (default bin/lodestar; OLD=..., DURATION=s
#                                                 per run, ROUNDS=n, DNSPERF_ARGS="-c 4 -T 2")
# The runs alternate, ROUNDS times (on a shared machine the load moves between them); prints
# each run's queries per second and the ratios of the medians the forwarding goals are stated in.
set -euo pipefail
cd "$(dirname "$0")/.."
lodestar=${1:-${LODESTAR:-bin/lodestar}}
old=${OLD:-}
duration=${DURATION:-5}
rounds=${ROUNDS:-3}
for tool in dnsperf named dig go; do
	command -v "$tool" >/dev/null || { echo "$tool is needed: scripts/apt-install.sh dnsperf:dnsperf named:bind9 dig:bind9-dnsutils"; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/gen" ./dnsserver/internal/gen
"$work/gen" state -out "$work"
freeport() {
	local p
	while :; do
		p=$("$work/gen" freeport)
		grep -qx "$p" "$work/ports" 2>/dev/null || { echo "$p" >>"$work/ports"; echo "$p"; return; }
	done
}

# The upstream: bind9, authoritative only, on its own loopback port, with its default threads.
bind_port=$(freeport)
{
	printf '$TTL 300\n@ IN SOA ns.example.test. root.example.test. 1 3600 600 86400 60\n@ IN NS ns\nns IN A 127.0.0.1\n'
	for i in $(seq 0 9999); do printf 'host%d IN A 10.%d.%d.%d\n' "$i" $((i / 65536)) $((i / 256 % 256)) $((i % 256)); done
} >"$work/example.test.zone"
cat >"$work/named.conf" <<EOF
options {
	directory "$work";
	pid-file "$work/named.pid";
	listen-on port $bind_port { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	minimal-responses yes;
	rate-limit { responses-per-second 0; };
};
zone "example.test" { type primary; file "$work/example.test.zone"; };
EOF
named -g -c "$work/named.conf" >"$work/named.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	dig @127.0.0.1 -p "$bind_port" +short +time=1 +tries=1 host1.example.test A 2>/dev/null | grep -q . && break
	sleep 0.1
done
dig @127.0.0.1 -p "$bind_port" +short host1.example.test A | grep -q . || { echo "bind9 did not start:"; tail -20 "$work/named.log"; exit 1; }

# Query files: every name once, over and over (misses for a cache), and 100 names (hits).
for i in $(seq 0 9999); do echo "host$i.example.test A"; done >"$work/queries-forward.txt"
for i in $(seq 0 99); do echo "host$i.example.test A"; done >"$work/queries-cached.txt"

# start_lodestar BIN NAME ARGS...: serve DNS on a free port, forwarding to bind9; sets $port.
start_lodestar() {
	local bin=$1 name=$2
	shift 2
	port=$(freeport)
	local api
	api=$(freeport)
	"$bin" serve --haproxy=false --mesos-state-file "$work/state.json" --dns-listen "127.0.0.1:$port" \
		--api-listen "127.0.0.1:$api" --run-dir "$work/run-$name" --dns-upstream "127.0.0.1:$bind_port" \
		--dns-rrl-rate 0 "$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 300); do
		[ -n "$(dig @127.0.0.1 -p "$port" +tcp +short +time=1 +tries=1 app-0.marathon.mesos A 2>/dev/null)" ] && return
		sleep 0.1
	done
	echo "lodestar ($name) did not answer:"
	tail -20 "$work/$name.log"
	exit 1
}

# run NAME PORT FILE: dnsperf; prints a line and sets $qps.
run() {
	# shellcheck disable=SC2086
	dnsperf -s 127.0.0.1 -p "$2" -d "$3" -l "$duration" ${DNSPERF_ARGS:-} >"$work/dnsperf-$1.txt" 2>&1 ||
		{ cat "$work/dnsperf-$1.txt"; exit 1; }
	qps=$(awk '/Queries per second:/ {print $4}' "$work/dnsperf-$1.txt")
	local lat lost
	lat=$(awk '/Average Latency \(s\):/ {printf "%.0f µs", $4 * 1e6; exit}' "$work/dnsperf-$1.txt")
	lost=$(awk '/Queries lost:/ {print $3 $4}' "$work/dnsperf-$1.txt")
	printf '%-10s %12s %14s %10s\n' "$1" "$qps" "$lat" "$lost"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); dnsperf, bind9 and lodestar share them"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds, the runs alternating; ratios of medians"
start_lodestar "$lodestar" forward --dns-cache-size 0
forward_port=$port
if [ -n "$old" ]; then
	# An older binary may not know --dns-cache-size: it had no cache.
	start_lodestar "$old" before
	before_port=$port
fi
start_lodestar "$lodestar" cached
cached_port=$port

printf '%-10s %12s %14s %10s\n' run qps "avg latency" lost
for r in $(seq 1 "$rounds"); do
	run upstream "$bind_port" "$work/queries-forward.txt"
	echo "$qps" >>"$work/qps-upstream"
	run forward "$forward_port" "$work/queries-forward.txt"
	echo "$qps" >>"$work/qps-forward"
	if [ -n "$old" ]; then
		run before "$before_port" "$work/queries-forward.txt"
		echo "$qps" >>"$work/qps-before"
	fi
	run cached "$cached_port" "$work/queries-cached.txt"
	echo "$qps" >>"$work/qps-cached"
	run in-zone "$cached_port" "$work/queries-a.txt"
	echo "$qps" >>"$work/qps-in-zone"
done

median() { sort -g "$work/qps-$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
printf 'medians: upstream %.0f, forward %.0f, cached %.0f, in-zone %.0f' "$(median upstream)" "$(median forward)" "$(median cached)" "$(median in-zone)"
[ -z "$old" ] || printf ', before %.0f' "$(median before)"
echo
echo "forward / upstream asked directly: $(ratio "$(median forward)" "$(median upstream)")"
[ -z "$old" ] || echo "forward / before:                  $(ratio "$(median forward)" "$(median before)")"
echo "cached / in-zone:                  $(ratio "$(median cached)" "$(median in-zone)")"
