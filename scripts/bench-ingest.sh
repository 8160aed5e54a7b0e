#!/usr/bin/env bash
# make bench-dns, after bench-dns.sh: lodestar's ingest of the DNS issue's 100,200-task Mesos
# state (10,000 apps of 10 tasks and one of 200 on 1,000 agents; two host ports each, every
# second task with a netinfo address, every fifth with DiscoveryInfo named ports), where mesos-dns
# takes 10 s to its first answer and peaks at 1.44 GB RSS.
#
#   scripts/bench-ingest.sh [path/to/lodestar]     (default bin/lodestar; LODESTAR=... works too)
#
# serve: `lodestar serve --haproxy=false --mesos-state-file state.json --dns-listen 127.0.0.1:PORT`;
# the wall time from starting the process to the first correct answer (every address of one app's
# A record; dig polls every 10 ms, so the figure is coarse by a dig's run, and the digs share the
# CPUs), then the peak RSS (VmHWM) at that answer and 5 s later, and the RSS then.
# records: `lodestar records --mesos-state-file state.json --format table >/dev/null`, its wall
# time and peak RSS (/usr/bin/time -v when installed, else VmHWM polled every 10 ms).
# Each is run RUNS times (default 3), then the median of every column is printed. SIZE=10k
# measures bench-dns.sh's 10,200-task state instead; TIMEOUT=seconds bounds the wait for the
# first answer (default 60).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
lodestar=${1:-${LODESTAR:-bin/lodestar}}
runs=${RUNS:-3}
size=${SIZE:-100k}
timeout=${TIMEOUT:-60}
command -v dig >/dev/null || { echo "dig is needed: apt-get install dnsutils"; exit 1; }
command -v go >/dev/null || { echo "Go is needed (see make check-go)"; exit 1; }
[ -x "$lodestar" ] || { echo "$lodestar: no lodestar binary there (make build)"; exit 1; }
[ -n "${EPOCHREALTIME:-}" ] || { echo "bash 5 or later is needed (EPOCHREALTIME)"; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# fail prints why and the log of the lodestar run, and exits.
fail() {
	echo "$1"
	echo "--- $2"
	tail -n 50 "$2"
	exit 1
}

# Times are ${EPOCHREALTIME/./}: the wall clock in microseconds, read without a fork.

# status prints field $2 (in kB) of /proc/$1/status; nothing once the process is gone.
status() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || true; }

# mb prints kB as MB (10^6 bytes).
mb() { awk -v k="$1" 'BEGIN {printf "%d", k * 1.024 / 1000 + 0.5}'; }

# median prints the middle of its arguments.
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

load() { cut -d' ' -f1 /proc/loadavg; }

go build -o "$work/gen" ./dnsserver/internal/gen
"$work/gen" state -out "$work" -size "$size"
name=$(awk 'NR == 1 {print $1}' "$work/answer-a.txt")
want=$(awk '{print $2}' "$work/answer-a.txt" | sort | tr '\n' ' ')
state_mb=$(du -m "$work/state.json" | cut -f1)
tasks=$(grep -o '"state":"TASK_RUNNING","resources"' "$work/state.json" | wc -l)

echo "ingest: $tasks-task Mesos state ($state_mb MiB); first answer checked: $name A"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# serve_run starts lodestar serve, waits for the first correct answer, reads its RSS then and
# 5 s later, and stops it. It sets res to (ms hwm-kB hwm5-kB rss5-kB); it runs in this shell, so
# that a failure's exit stops lodestar.
serve_run() {
	local log=$work/serve-$1.log port t0 got rc=0
	port=$("$work/gen" freeport)
	rm -rf "$work/run"
	t0=${EPOCHREALTIME/./}
	"$lodestar" serve --haproxy=false --mesos-state-file "$work/state.json" --dns-listen "127.0.0.1:$port" \
		--api-listen 127.0.0.1:0 --run-dir "$work/run" >"$log" 2>&1 &
	pid=$!
	while :; do
		got=$(dig @127.0.0.1 -p "$port" +short +time=1 +tries=1 "$name" A 2>/dev/null | sort | tr '\n' ' ' || true)
		[ "$got" = "$want" ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" || rc=$?
			pid=
			fail "lodestar serve exited $rc before answering $name:" "$log"
		fi
		if ((${EPOCHREALTIME/./} - t0 > timeout * 1000000)); then
			echo "$name: no correct answer after ${timeout}s; want: $want; last: $got"
			dig @127.0.0.1 -p "$port" +time=1 +tries=1 "$name" A || true
			fail "lodestar serve:" "$log"
		fi
		sleep 0.01
	done
	local ms=$(((${EPOCHREALTIME/./} - t0) / 1000)) hwm hwm5 rss5
	hwm=$(status "$pid" VmHWM)
	sleep 5
	hwm5=$(status "$pid" VmHWM)
	rss5=$(status "$pid" VmRSS)
	if [ -z "$hwm5" ]; then
		wait "$pid" || rc=$?
		pid=
		fail "lodestar serve exited $rc within 5 s of its first answer:" "$log"
	fi
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	pid=
	[ "$rc" = 0 ] || fail "lodestar serve exited $rc on SIGTERM:" "$log"
	res=("$ms" "$hwm" "$hwm5" "$rss5")
}

# records_run runs lodestar records once and sets res to (ms maxrss-kB).
records_run() {
	local log=$work/records-$1.log ms kb
	if [ -x /usr/bin/time ]; then
		local TIMEFORMAT=%3R
		if ! { time /usr/bin/time -v -o "$work/time-$1.txt" "$lodestar" records --mesos-state-file "$work/state.json" \
			--format table >/dev/null 2>"$log"; } 2>"$work/wall-$1.txt"; then
			fail "lodestar records failed:" "$log"
		fi
		ms=$(awk '{printf "%d", $1 * 1000}' "$work/wall-$1.txt")
		kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time-$1.txt")
	else
		local t0 h rc=0
		kb=0
		t0=${EPOCHREALTIME/./}
		"$lodestar" records --mesos-state-file "$work/state.json" --format table >/dev/null 2>"$log" &
		pid=$!
		while h=$(status "$pid" VmHWM) && [ -n "$h" ]; do
			kb=$h
			sleep 0.01
		done
		wait "$pid" || rc=$?
		pid=
		ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
		[ "$rc" = 0 ] || fail "lodestar records exited $rc:" "$log"
	fi
	res=("$ms" "$kb")
}

echo
echo "lodestar serve --haproxy=false: start to first correct answer, peak RSS"
printf '%-8s %6s %14s %12s %12s %12s\n' run load "first answer" "VmHWM then" "VmHWM +5s" "VmRSS +5s"
a=() h=() h5=() r5=()
for i in $(seq 1 "$runs"); do
	l=$(load)
	serve_run "$i"
	ms=${res[0]} hwm=${res[1]} hwm5=${res[2]} rss5=${res[3]}
	a+=("$ms") h+=("$hwm") h5+=("$hwm5") r5+=("$rss5")
	printf '%-8s %6s %11s ms %9s MB %9s MB %9s MB\n' "$i" "$l" "$ms" "$(mb "$hwm")" "$(mb "$hwm5")" "$(mb "$rss5")"
done
printf '%-8s %6s %11s ms %9s MB %9s MB %9s MB\n' median "" "$(median "${a[@]}")" \
	"$(mb "$(median "${h[@]}")")" "$(mb "$(median "${h5[@]}")")" "$(mb "$(median "${r5[@]}")")"

echo
if [ -x /usr/bin/time ]; then
	echo "lodestar records --format table >/dev/null: wall time (bash time), peak RSS (/usr/bin/time -v)"
else
	echo "lodestar records --format table >/dev/null: wall time, peak RSS (VmHWM polled every 10 ms; apt-get install time for /usr/bin/time -v)"
fi
printf '%-8s %6s %14s %12s\n' run load "wall" "max RSS"
w=() m=()
for i in $(seq 1 "$runs"); do
	l=$(load)
	records_run "$i"
	ms=${res[0]} kb=${res[1]}
	w+=("$ms") m+=("$kb")
	printf '%-8s %6s %11s ms %9s MB\n' "$i" "$l" "$ms" "$(mb "$kb")"
done
printf '%-8s %6s %11s ms %9s MB\n' median "" "$(median "${w[@]}")" "$(mb "$(median "${m[@]}")")"
