// Package examples embeds the example cluster lodestar serves when it is given no source: a
// Marathon /v2/apps document (apps.json) and a Mesos master state (state.json), every address
// on loopback. `make demo` serves the same files from this directory, so editing them there
// shows a change going through.
package examples

import _ "embed"

// Apps is examples/apps.json: Marathon apps with their tasks, as GET /v2/apps?embed=apps.tasks.
//
//go:embed apps.json
var Apps []byte

// State is examples/state.json: a Mesos master's /master/state with loopback addresses.
//
//go:embed state.json
var State []byte
