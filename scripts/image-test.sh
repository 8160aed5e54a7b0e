#!/usr/bin/env bash
# make image-test: builds the real Dockerfile and runs the image, with no registry and no
# Docker engine (the case on this machine and at air-gapped sites):
#   deps    podman, runc and debootstrap from Debian's packages (scripts/apt-install.sh)
#   podman  a containers.conf and storage.conf of this script's own: every image, container and
#           podman state file lives under $LODESTAR_IMAGE_TEST_DIR, nothing in the machine's /etc
#   base    debootstrap --variant=minbase bookworm from the mirror apt uses, trimmed, with the
#           host's CA bundle (the module download and an https mirror need it), imported
#   goimage that base plus the host's Go tree (/usr/local/go)
#   build   podman build --pull=never of ./Dockerfile with those two as BUILD_IMAGE/RUNTIME_IMAGE
#   run     the image on --network=host, lodestar and HAProxy on free loopback ports, fed one
#           app from a file whose task is a demo-backend on 127.0.0.1
#   check   /readyz answers 200; requests through the container's HAProxy (vhost and service
#           port) reach the backend
#   ports   the image's default binds (:80, :443) in a network namespace of its own, opened as
#           the image's unprivileged user through the Dockerfile's file capabilities
# base and goimage are reused when present; build runs every time (its layer cache is kept).
# Each phase prints its time; a failure names the phase, shows its output's tail and the
# containers' logs, and exits 1. The containers are removed on exit, failure or not.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
GO=${GO:-go}

if [ "$(id -u)" -ne 0 ] && ! command -v podman >/dev/null; then
  echo "image-test needs podman (and runc, debootstrap): as root, make image-test installs them;" \
    "or: sudo apt-get install -y podman runc debootstrap" >&2
  exit 1
fi

suite=bookworm
if [ "$(id -u)" -eq 0 ]; then state=${LODESTAR_IMAGE_TEST_DIR:-/var/tmp/lodestar-image-test}
else state=${LODESTAR_IMAGE_TEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lodestar-image-test}; fi
logs=$state/logs
base_image=localhost/lodestar-test/debian:$suite
image=localhost/lodestar-test/lodestar:test
container=lodestar-image-test
mkdir -p "$logs"
# One run at a time: they share the images and the container name.
exec 9>"$state/lock"
flock -w 600 9 || { echo "image-test: another run holds $state/lock" >&2; exit 1; }

# runc keeps its container state under $state/runc too, not in /run/runc: podman is always
# called with that root, and build steps get it with --runtime-flag.
runc_root=$state/runc
podman() { command podman --runtime-flag "root=$runc_root" "$@"; }

# remove_containers: every container in this test's storage, the image's and those an
# interrupted podman build leaves (its runc process still running, its working container).
remove_containers() {
  local ids=() id
  if [ -d "$runc_root" ]; then
    for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
      runc --root "$runc_root" delete -f "$id" || true
    done
  fi
  mapfile -t ids < <(podman ps -aq --external)
  [ ${#ids[@]} -eq 0 ] || podman rm -f -t 5 "${ids[@]}" >/dev/null
}

backend_pid=
cleanup() {
  if command -v podman >/dev/null && [ -n "${CONTAINERS_CONF:-}" ]; then
    remove_containers >/dev/null 2>&1 || true
  fi
  [ -z "$backend_pid" ] || kill "$backend_pid" 2>/dev/null || true
}
trap cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
total_start=$(now)

# fail PHASE LOG: what failed, the tail of its output and the container's log; exit 1.
fail() {
  echo "image-test: FAILED in phase $1 (full output: $2)" >&2
  echo "--- last lines of $1's output:" >&2
  tail -n 40 "$2" >&2 || true
  local c
  if command -v podman >/dev/null && [ -n "${CONTAINERS_CONF:-}" ]; then
    for c in $(podman ps -a --format '{{.Names}}' 2>/dev/null); do
      echo "--- container $c's log (last 60 lines):" >&2
      podman logs --tail 60 "$c" >&2 2>&1 || true
    done
  fi
  exit 1
}

# phase NAME FUNCTION ARGS...: runs FUNCTION with its output in logs/NAME.log and prints the
# time it took. It runs as a background job so that `set -e` holds inside it (a function
# called in an `if` or after `||` would run with errexit off).
phase() {
  local name=$1 start
  shift
  start=$(now)
  "$@" >"$logs/$name.log" 2>&1 &
  wait $! || fail "$name" "$logs/$name.log"
  printf 'image-test: %-8s %6ss  %s\n' "$name" "$(since "$start")" "$(tail -n 1 "$logs/$name.log")"
}

deps() {
  scripts/apt-install.sh podman:podman runc:runc curl:curl python3:python3
  echo "podman $(podman --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}')"
}

# podman_config writes containers.conf and storage.conf under the state directory. runc and
# cgroupfs because crun fails here on setrlimit and the hybrid cgroup layout; file events
# because there is no journald; open files no higher than this shell's hard limit, or the
# runtime's setrlimit fails (there is no CAP_SYS_RESOURCE here); processes likewise, and no
# higher than kernel.pid_max either, where podman caps its own limit (and so runc's).
podman_config() {
  local files procs pid_max
  files=$(ulimit -Hn) procs=$(ulimit -Hu) pid_max=$(cat /proc/sys/kernel/pid_max)
  [ "$files" = unlimited ] && files=1048576
  if [ "$procs" = unlimited ] || [ "$procs" -gt "$pid_max" ]; then procs=$pid_max; fi
  mkdir -p "$state/storage" "$state/run" "$state/tmp" "$state/networks" "$state/volumes"
  cat >"$state/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$files:$files", "nproc=$procs:$procs"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$state/events.log"
tmp_dir = "$state/tmp"
volume_path = "$state/volumes"

[network]
network_config_dir = "$state/networks"
EOF
  cat >"$state/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$state/storage"
runroot = "$state/run"
EOF
}

check_podman() {
  podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Store.GraphDriverName}} {{.Store.GraphRoot}}'
}

# apt_uri SUITE: the first archive apt uses here for SUITE (one-line .list entries or deb822
# .sources stanzas); nothing when none is.
apt_uri() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    sed -E 's/\[[^]]*\]//' "$f" | awk -v s="$1" '$1 == "deb" && $3 == s { print $2; exit }' | grep . && return
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v s="$1" 'BEGIN { RS = ""; FS = "\n" } {
      uri = ""; ok = 0; deb = 0
      for (i = 1; i <= NF; i++) {
        n = split($i, w, " ")
        if (w[1] == "URIs:") uri = w[2]
        if (w[1] == "Types:") for (j = 2; j <= n; j++) if (w[j] == "deb") deb = 1
        if (w[1] == "Suites:") for (j = 2; j <= n; j++) if (w[j] == s) ok = 1
      }
      if (deb && ok && uri != "") { print uri; exit } }' "$f" | grep . && return
  done
  return 0
}

# apt settings of the host that the base image's apt needs too (a proxy, a snapshot mirror's
# Valid-Until), as apt.conf lines.
apt_host_settings() {
  local key v
  for key in Acquire::http::Proxy Acquire::https::Proxy Acquire::Check-Valid-Until Acquire::Check-Date; do
    v=
    eval "$(apt-config shell v "$key")"
    [ -z "$v" ] || printf '%s "%s";\n' "$key" "$v"
  done
}

# make_base: a minbase bookworm from the host's mirror, trimmed like debian:bookworm-slim, with
# the host's CA bundle (an https mirror needs it before ca-certificates is installed).
make_base() {
  local mirror root=$state/rootfs
  mirror=$(apt_uri "$suite")
  mirror=${mirror:-http://deb.debian.org/debian}
  scripts/apt-install.sh debootstrap:debootstrap
  unmount_under "$root"
  rm -rf --one-file-system "$root"
  echo "debootstrap $suite from $mirror"
  # shellcheck disable=SC2064 # root is expanded now: the trap runs after this function returns.
  trap "unmount_under $(printf %q "$root")" EXIT
  debootstrap --variant=minbase "$suite" "$root" "$mirror"
  unmount_under "$root"
  trap - EXIT
  local security
  security=$(apt_uri "$suite-security")
  {
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    [ -z "$security" ] || echo "deb $security $suite-security main"
  } >"$root/etc/apt/sources.list"
  apt_host_settings >"$root/etc/apt/apt.conf.d/90host"
  install -D -m 644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  # As in debian:*-slim: no package files or apt caches left behind in an image's layers.
  cat >"$root/etc/apt/apt.conf.d/90slim" <<'EOF'
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root"/usr/share/{man,info,locale}/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
    "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
  tar --numeric-owner --xattrs -C "$root" -cf "$state/base.tar" .
  rm -rf --one-file-system "$root"
  podman import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$state/base.tar" "$base_image"
  rm -f "$state/base.tar"
  podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$base_image"
}

# unmount_under DIR: what debootstrap left mounted under DIR (it mounts proc and sys), deepest
# first, so that removing DIR cannot reach the host's /proc or /sys.
unmount_under() {
  local m
  [ -d "$1" ] || return 0
  awk -v d="$(realpath "$1")/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m"; done
}

# make_go_image: the base image plus the host's Go tree, set up as the golang image is.
make_go_image() {
  local ctr goroot
  goroot=$("$GO" env GOROOT)
  ctr=$(podman create "$base_image" true)
  podman cp "$goroot" "$ctr:/usr/local/go"
  podman commit --quiet \
    --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' \
    --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /go' "$ctr" "$go_image"
  podman rm "$ctr"
  podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$go_image"
}

build_image() {
  local args=(--pull=never --network=host --runtime-flag "root=$runc_root" --build-arg "BUILD_IMAGE=$go_image"
    --build-arg "RUNTIME_IMAGE=$base_image"
    --build-arg "VERSION=$(git describe --always --dirty 2>/dev/null || echo dev)")
  local v
  for v in GOPROXY GOSUMDB GOFLAGS; do
    [ -z "${!v:-}" ] || args+=(--build-arg "$v=${!v}")
  done
  # The build stage is tagged too, so that its layers (the module download) stay cached for the
  # next run while the previous run's, now untagged, are pruned with its final image.
  podman build "${args[@]}" --target build -t "$image-build" -f Dockerfile .
  podman build "${args[@]}" -t "$image" -f Dockerfile .
  podman image prune -f >/dev/null
  podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image"
}

# free_ports N: N TCP ports free on 127.0.0.1 now.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# apps_file PATH: one app for the image's lodestar: a vhost and a service port on loopback,
# its one task the demo-backend on 127.0.0.1:$backend_port.
apps_file() {
  cat >"$1" <<EOF
{"apps": [{
  "id": "/image-test/web", "instances": 1,
  "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.image-test.example",
             "HAPROXY_0_BIND_ADDR": "127.0.0.1"},
  "portDefinitions": [{"port": $svc_port, "protocol": "tcp", "name": "http"}],
  "version": "2026-12-01T00:00:00.000Z", "deployments": [],
  "tasks": [{"id": "image-test_web.1", "appId": "/image-test/web", "host": "127.0.0.1",
    "ports": [$backend_port], "state": "TASK_RUNNING", "version": "2026-12-01T00:00:00.000Z",
    "stagedAt": "2026-12-01T00:00:01.000Z", "startedAt": "2026-12-01T00:00:02.000Z"}]
}]}
EOF
  chmod 644 "$1"
}

run_container() {
  podman run -d --name "$container" --network=host \
    -v "$state/apps.json:/etc/lodestar/apps.json:ro" "$image" \
    serve --apps-file /etc/lodestar/apps.json --group external \
    --api-listen "127.0.0.1:$api_port" --http-bind "127.0.0.1:$http_port" \
    --https-bind "127.0.0.1:$https_port" --stats-bind "127.0.0.1:$stats_port" \
    --appid-bind "127.0.0.1:$appid_port" --haproxy-maxconn 1024
  echo "container $container: API 127.0.0.1:$api_port, HTTP 127.0.0.1:$http_port, service port $svc_port"
}

# check_serving: /readyz 200 (waiting while lodestar starts), then one request by vhost and
# one on the service port, each answered by the backend behind the container's HAProxy.
check_serving() {
  local code='' body want="hello from the task at 127.0.0.1:$backend_port"
  for _ in $(seq 120); do
    [ "$(podman inspect -f '{{.State.Running}}' "$container")" = true ] ||
      { echo "the container exited"; return 1; }
    code=$(curl -s -o "$state/readyz.out" -w '%{http_code}' "http://127.0.0.1:$api_port/readyz" || true)
    [ "$code" = 200 ] && break
    sleep 0.5
  done
  cat "$state/readyz.out" 2>/dev/null; echo
  [ "$code" = 200 ] || { echo "/readyz answered ${code:-nothing}, want 200"; return 1; }
  body=$(curl -sS --max-time 10 -H 'Host: web.image-test.example' "http://127.0.0.1:$http_port/")
  echo "vhost: $body"
  [[ $body == "$want"* ]] || { echo "the vhost request did not reach the backend (want: $want)"; return 1; }
  body=$(curl -sS --max-time 10 "http://127.0.0.1:$svc_port/")
  echo "service port: $body"
  [[ $body == "$want"* ]] || { echo "the service-port request did not reach the backend"; return 1; }
  echo "readyz 200, vhost and service port routed to 127.0.0.1:$backend_port"
}

# in_container NAME PORT REQUEST-PATH [HOST]: the status line of an HTTP request made inside
# the container (bash's /dev/tcp: the image has no HTTP client).
in_container() {
  podman exec "$1" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$3" >&3; head -n 1 <&3' _ "$2" "$3" "${4:-x}" | tr -d '\r'
}

# check_privileged_ports: the image's own defaults (HTTP on :80, HTTPS on :443) in a network
# namespace of its own: HAProxy, running as the image's unprivileged user, binds them through
# the file capability the Dockerfile sets, and no process in the container is root. Podman and
# Docker make every port unprivileged in a container's own namespace; the sysctl puts back
# the kernel's default (as on the host's network), so that the capability is what is tested.
check_privileged_ports() {
  local ctr=$container-ports line=''
  podman run -d --name "$ctr" --network=none --sysctl net.ipv4.ip_unprivileged_port_start=1024 \
    -v "$state/apps.json:/etc/lodestar/apps.json:ro" "$image" \
    serve --apps-file /etc/lodestar/apps.json --group external --haproxy-maxconn 1024
  for _ in $(seq 120); do
    [ "$(podman inspect -f '{{.State.Running}}' "$ctr")" = true ] || { echo "$ctr exited"; return 1; }
    line=$(in_container "$ctr" 8090 /readyz 2>/dev/null || true)
    [[ $line == *" 200 "* ]] && break
    sleep 0.5
  done
  echo "/readyz: $line"
  [[ $line == *" 200 "* ]] || { echo "/readyz did not answer 200 with the default binds"; return 1; }
  line=$(in_container "$ctr" 80 / web.image-test.example)
  echo ":80: $line"
  # Its one task is on the host's loopback, out of this namespace: HAProxy's own 503 shows it
  # holds :80.
  [[ $line == "HTTP/1."?" 503 "* ]] || { echo "HAProxy does not answer on :80"; return 1; }
  podman exec "$ctr" bash -c 'exec 3<>/dev/tcp/127.0.0.1/443' || { echo "nothing listens on :443"; return 1; }
  # lodestar holds those sockets itself (they outlive an HAProxy crash) through its own file
  # capability; without it HAProxy binds them and lodestar warns.
  if podman logs "$ctr" 2>&1 | grep -F "could not hold the listening socket"; then
    echo "lodestar could not open :80/:443 itself"; return 1
  fi
  podman top "$ctr" user args
  if podman top "$ctr" user | tail -n +2 | grep -qvx lodestar; then
    echo "a process in the container runs as another user than lodestar"; return 1
  fi
  podman rm -f -t 5 "$ctr" >/dev/null
  echo "default binds :80 and :443 held by lodestar, served by HAProxy, as user lodestar"
}

phase deps deps
podman_config
export CONTAINERS_CONF=$state/containers.conf CONTAINERS_STORAGE_CONF=$state/storage.conf
phase podman check_podman
# What an interrupted run left behind.
remove_containers
go_image=localhost/lodestar-test/golang:$("$GO" env GOVERSION)

if podman image exists "$base_image"; then echo "image-test: base     present: $base_image"
elif [ "$(id -u)" -ne 0 ]; then
  echo "image-test: the base image is made with debootstrap, which needs root: run make image-test once as root" >&2
  exit 1
else phase base make_base; fi
if podman image exists "$go_image"; then echo "image-test: goimage  present: $go_image"
else phase goimage make_go_image; fi
phase build build_image

phase backend "$GO" build -o "$state/demo-backend" ./cmd/demo-backend
read -r api_port http_port https_port stats_port appid_port svc_port backend_port < <(free_ports 7)
"$state/demo-backend" "$backend_port" 2>"$logs/demo-backend.log" &
backend_pid=$!
apps_file "$state/apps.json"
phase run run_container
phase check check_serving
phase ports check_privileged_ports
echo "image-test: passed in $(since "$total_start")s"
