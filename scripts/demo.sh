#!/usr/bin/env bash
# make demo: runs lodestar on the example cluster in examples/ — apps and Mesos state from
# files, a real HAProxy on local ports, DNS on a local port — with small backends standing in
# for the tasks, and says what to try.
set -euo pipefail
bin=${1:-bin/lodestar}
backend=${2:-bin/demo-backend}
api=${LODESTAR_API_LISTEN:-127.0.0.1:8090}
http=127.0.0.1:8080 https=127.0.0.1:8443 stats=127.0.0.1:9090 dns=127.0.0.1:8053
run=${LODESTAR_RUN_DIR:-/tmp/lodestar-demo}
mkdir -p "$run"

# The example tasks listen on 127.0.0.1:31001-31004; 31005 is free for a scale-up. A port
# another process holds is named in the backend's log and skipped; the others are served.
"$backend" 31001 31002 31003 31004 31005 &
backend_pid=$!
trap 'kill $backend_pid 2>/dev/null || true' EXIT

cat <<MSG

lodestar demo — apps from examples/apps.json, Mesos state from examples/state.json.
HAProxy routes the example apps; backends on 127.0.0.1:31001-31005 answer for the tasks.
In another terminal, try:

  curl -H 'Host: shop.example.test' http://$http/      # vhost route to /shop/web (2 tasks, round robin)
  curl -H 'Host: api.example.test' http://$http/v1/    # vhost + path route to /shop/api
  curl -k --resolve shop.example.test:${https##*:}:127.0.0.1 https://shop.example.test:${https##*:}/   # SNI/TLS, self-signed
  curl http://127.0.0.1:10000/                         # /shop/web on its service port
  curl http://$stats/haproxy?stats                     # HAProxy's stats page (/metrics: its exporter)

  dig @${dns%:*} -p ${dns##*:} web-shop.marathon.mesos          # A record of a Marathon task
  dig @${dns%:*} -p ${dns##*:} _web-shop._tcp.marathon.mesos SRV
  dig @${dns%:*} -p ${dns##*:} leader.mesos

  open http://$api/ in a browser            # the status page: apps, routes, servers, DNS names, reloads
  curl -s http://$api/v1/apps               # the registry: every app, every task, eligible or why not
  curl -s http://$api/v1/apps/shop/web      # one app: parsed labels, routes, tasks, DNS names
  curl -s http://$api/v1/haproxy/status     # last apply (runtime or reload, and why), apps left out
  curl -s http://$api/v1/hosts/web-shop.marathon.mesos     # mesos-dns's HTTP API
  $bin render --apps-file examples/apps.json --group '*'    # the HAProxy config, then exit
  $bin records --mesos-state-file examples/state.json       # the DNS records, then exit

Scale-up without a reload: in examples/apps.json, copy one of /shop/web's tasks, give the
copy a new "id" and "ports": [31005], save, then repeat the first curl a few times: the new
task answers, and /v1/haproxy/status shows a "runtime" apply with "reloads" unchanged.
Stop with Ctrl-C.

MSG
"$bin" serve --apps-file examples/apps.json --mesos-state-file examples/state.json \
  --api-listen "$api" --run-dir "$run" --group '*' \
  --http-bind "$http" --https-bind "$https" --stats-bind "$stats" --appid-bind 127.0.0.1:9091 \
  --dns-listen "$dns"
