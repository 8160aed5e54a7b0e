# lodestar image: the lodestar binary next to Debian's HAProxy 2.6.
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t lodestar:latest .
# The lab in docker-compose.yml (rendered from examples/cluster.yaml) builds it too.
# Without a registry (air-gapped, or `make image-test`), name local images for the two stages:
#   --build-arg BUILD_IMAGE=localhost/my-go:1.26 --build-arg RUNTIME_IMAGE=localhost/my-debian:bookworm
# (README.md, "The image without a registry"); GOPROXY, GOSUMDB and GOFLAGS pass through too.
ARG BUILD_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build: a static binary (no cgo), reproducible paths.
FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# Unset unless given with --build-arg; an empty value means Go's default.
ARG GOPROXY
ARG GOSUMDB
ARG GOFLAGS
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/lodestar ./cmd/lodestar

# --- runtime: Debian slim with HAProxy; lodestar runs as an unprivileged user.
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends haproxy ca-certificates libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/lodestar /usr/local/bin/lodestar
# HAProxy binds :80 and :443 and lodestar's DNS binds :53 without root: file capabilities.
RUN setcap cap_net_bind_service=+ep /usr/sbin/haproxy \
 && setcap cap_net_bind_service=+ep /usr/local/bin/lodestar \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/lodestar --create-home lodestar \
 && install -o lodestar -g lodestar -m 600 /dev/null /etc/ssl/cert.pem
USER lodestar
WORKDIR /var/lib/lodestar
# HTTP, HTTPS, HAProxy stats and /metrics, app-id frontend, lodestar API, DNS.
EXPOSE 80 443 9090 9091 8090 53/udp 53/tcp
# `docker run IMAGE sse -m http://marathon:8080 --group external` works as with marathon-lb's
# image: lodestar reads sse and poll as `lodestar marathon-lb sse|poll`. HAPROXY_SSL_CERT is
# written to /etc/ssl/cert.pem (made above, the only file there lodestar may write), as there.
ENTRYPOINT ["lodestar"]
CMD ["serve"]
