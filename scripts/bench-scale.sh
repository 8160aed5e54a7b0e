#!/usr/bin/env bash
# make bench-scale: what HAProxy is handed at 1,000 and 10,000 apps × 3 tasks (generated inside
# integration/scalebench: each app in HAPROXY_GROUP=external with one service port, a vhost and
# a Marathon HTTP health check, tasks on 127.0.0.x, healthy). For each size it renders lodestar's
# configuration, runs `haproxy -c` RUNS times (the configurations in turn, round after round)
# with the open-files soft limit raised to the hard limit, and prints server lines,
# configuration size, build+render time, the open files HAProxy would ask for at start, and
# the medians of `haproxy -c`'s wall time, CPU time and peak RSS.
#
#   scripts/bench-scale.sh            (APPS=1000,10000 TASKS=3 RUNS=3 HAPROXY=haproxy KEEP=dir MAP=1)
#
# MAP=1 adds a row for lodestar's configuration with --haproxy-map (map files instead of one
# ACL and use_backend line per app in the shared frontends).
#
# With MARATHON_LB_DIR=path/to/a/marathon-lb/checkout it also serves the same apps from the
# in-tree fake Marathon, has marathon-lb print its configuration (marathon_lb.py --dry --group
# external --health-check), measures that the same way and prints lodestar / marathon-lb.
# marathon-lb needs Python 3 with pycurl, requests, six, python-dateutil, PyJWT and
# cryptography (Debian: apt-get install python3-pycurl python3-requests python3-six
# python3-dateutil python3-jwt python3-cryptography); MARATHON_LB_PYTHON picks the interpreter,
# otherwise the first of python3 and /usr/bin/python3 that imports pycurl.
# KEEP=dir keeps the configurations (dir/<lodestar|marathon-lb>-<apps>/haproxy.cfg) to study;
# `go run ./integration/scalebench -check a.cfg,b.cfg` measures edited ones.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || { echo "Go is needed (see make check-go)"; exit 1; }
command -v "${HAPROXY:-haproxy}" >/dev/null || scripts/apt-install.sh haproxy:haproxy

if [ -n "${MARATHON_LB_DIR:-}" ]; then
	[ -f "$MARATHON_LB_DIR/marathon_lb.py" ] || { echo "MARATHON_LB_DIR=$MARATHON_LB_DIR: no marathon_lb.py there"; exit 1; }
	if [ -z "${MARATHON_LB_PYTHON:-}" ]; then
		for py in python3 /usr/bin/python3; do
			if "$py" -c 'import pycurl, requests, six, dateutil, jwt, cryptography' 2>/dev/null; then
				MARATHON_LB_PYTHON=$(command -v "$py")
				break
			fi
		done
		[ -n "${MARATHON_LB_PYTHON:-}" ] || {
			echo "marathon-lb's Python modules are missing: apt-get install python3-pycurl python3-requests python3-six python3-dateutil python3-jwt python3-cryptography"
			exit 1
		}
	fi
	export MARATHON_LB_DIR MARATHON_LB_PYTHON
fi

args=(-apps "${APPS:-1000,10000}" -tasks "${TASKS:-3}" -runs "${RUNS:-3}" -haproxy "${HAPROXY:-haproxy}")
[ -z "${KEEP:-}" ] || args+=(-keep "$KEEP")
[ -z "${MAP:-}" ] || args+=(-haproxy-map)
go run ./integration/scalebench "${args[@]}"
