//go:build tools

// Package pins keeps go.mod pinned to the module versions lodestar builds on before code
// imports them: config-parser/v5 v5.1.6 is the only version the module proxy serves here, and
// miekg/dns and go-zookeeper/zk are the DNS and ZooKeeper libraries the design names. The
// build tag keeps it out of every build; `go mod tidy` still sees it. Drop an import once a
// package imports that module for real.
package pins

import (
	_ "github.com/go-zookeeper/zk"
	_ "github.com/haproxytech/config-parser/v5"
	_ "github.com/miekg/dns"
)
