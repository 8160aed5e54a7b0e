#!/usr/bin/env bash
# make demo: runs lodestar on the example cluster in examples/ and says what to try.
set -euo pipefail
bin=${1:-bin/lodestar}
api=${LODESTAR_API_LISTEN:-127.0.0.1:8090}
cat <<MSG

lodestar demo — apps from examples/apps.json, Mesos state from examples/state.json.
The API listens on http://$api. In another terminal, try:

  curl -s http://$api/v1/apps      # the registry: every app, every task, eligible or why not
  curl -s http://$api/readyz       # ready once the first sync is done
  curl -s http://$api/metrics | grep lodestar_
  $bin render --apps-file examples/apps.json   # what would be routed, then exit

Edit examples/apps.json (add a task to /shop/web, or set "alive": false in a task's
healthCheckResults) and GET /v1/apps again: the file is re-read within a second.
Stop with Ctrl-C.

MSG
exec "$bin" serve --apps-file examples/apps.json --mesos-state-file examples/state.json --api-listen "$api"
