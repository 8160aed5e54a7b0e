package discovery

import (
	"bytes"
	"errors"
)

// A hand-written decoder for Marathon's /v2/apps documents, several times faster than
// encoding/json on them: most of a real payload is fields lodestar does not read (cmd, env,
// constraints, versionInfo, …), which it skips without building anything, and what it reads it
// decodes into the wire structs with no reflection.
//
// It gives the same results as decodeMarathonAppsStd, which stays the reference:
//
//   - Values land in the wire structs with encoding/json's semantics, including its corner
//     cases: null leaves strings, numbers, bools and structs as they are and sets maps, slices
//     and pointers to nil; an int takes only an integer literal that fits; a repeated key
//     decodes into what the previous one left (maps merge, slices are reused element by
//     element, pointers keep their target); `[]` is an empty, not a nil, slice.
//   - Whatever it does not handle itself it hands to encoding/json, per app or for the whole
//     document, so the results and error messages are encoding/json's. An app with a value of
//     the wrong type, a key that is not one of its fields' exact names but that encoding/json
//     would match case-insensitively ("Instances"), a key with escapes or non-ASCII bytes, or
//     a repeated "tasks" key is re-decoded with encoding/json (decodeAppItem), which reports
//     the AppError or decodes it. A document that is not well-formed JSON, nests deeper than
//     encoding/json allows, or is not plainly one of the shapes below (a repeated or
//     differently-cased "apps", "app" or "id" key, "apps" that is not an array, "apps" next to
//     "app" or "id", …) goes to decodeMarathonAppsStd whole.
//
// So there is no deliberate difference in results: keys are matched in exact case (with both
// Marathon's spelling and the Go field name for the fields without a json tag: "mode"/"Mode",
// "value"/"Value", "id"/"ID"), and any other case-insensitive match costs a fallback, not a
// different answer.
//
// Shapes decoded here: {"apps":[…]}, {"app":{…}}, a bare app {"id":…} and a JSON array of apps.

const maxJSONDepth = 10000 // encoding/json rejects documents nested deeper than this

var (
	// errFastSyntax: the document is not well-formed JSON (or nests too deep).
	errFastSyntax = errors.New("marathon fast decoder: malformed JSON")
	// errFastType: a value this decoder does not take where it stands (wrong type, unusual
	// key); encoding/json decides what it means.
	errFastType = errors.New("marathon fast decoder: unusual value")
)

// The JSON names of the wire structs' fields, for the fold check of unknownField.
var (
	appFields             = foldSetOf[wireApp]()
	portDefFields         = foldSetOf[wirePortDef]()
	portMappingFields     = foldSetOf[wirePortMapping]()
	containerFields       = foldSetOf[wireContainer]()
	dockerFields          = foldSetOf[wireDocker]()
	networkFields         = foldSetOf[wireNetwork]()
	ipAddressFields       = foldSetOf[wireIPAddress]()
	ipAddressDiscFields   = foldSetOf[wireIPAddressDisc]()
	discoveryPortFields   = foldSetOf[wireDiscoveryPort]()
	healthCheckFields     = foldSetOf[wireHealthCheck]()
	commandFields         = foldSetOf[wireCommand]()
	readinessCheckFields  = foldSetOf[wireReadinessCheck]()
	deploymentFields      = foldSetOf[wireDeployment]()
	readinessResultFields = foldSetOf[wireReadinessResult]()
	taskFields            = foldSetOf[wireTask]()
	taskIPFields          = foldSetOf[wireTaskIP]()
	healthResultFields    = foldSetOf[wireHealthResult]()
	versionInfoFields     = foldSetOf[wireVersionInfo]()
)

// decodeMarathonAppsFast is DecodeMarathonApps.
func decodeMarathonAppsFast(data []byte) ([]*App, []error, error) {
	res, ok := tryDecodeFast(data)
	if !ok {
		return decodeMarathonAppsStd(data)
	}
	return res.result()
}

// tryDecodeFast decodes data unless it has to be left to decodeMarathonAppsStd (ok=false).
func tryDecodeFast(data []byte) (res appsResult, ok bool) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return res, false
	}
	d := fastDec{data: data}
	switch data[0] {
	case '[':
		ok = d.appList(&res) && d.pos == len(data)
	case '{':
		ok = d.envelope(&res)
	}
	return res, ok
}

// appsResult collects the apps of a document the way decodeMarathonAppsStd does.
type appsResult struct {
	apps    []*App
	appErrs []error
	// envelope: an {"apps":…} or {"app":…} document, which decodeMarathonAppsStd returns as a
	// non-nil (possibly empty) apps slice when encoding/json decodes every app, and from
	// decodeAppList (nil when empty) when one fails.
	envelope  bool
	decodeErr bool
	// stdDecodes counts the apps handed to encoding/json (decodeAppItem).
	stdDecodes int
}

func (r *appsResult) add(a *App, err error) {
	if err != nil {
		r.appErrs = append(r.appErrs, err)
		return
	}
	r.apps = append(r.apps, a)
}

func (r *appsResult) result() ([]*App, []error, error) {
	if r.apps == nil && r.envelope && !r.decodeErr {
		r.apps = []*App{}
	}
	return r.apps, r.appErrs, nil
}

// envelope decodes a document that is a JSON object: {"apps":[…]}, {"app":{…}} or a bare app.
// It reports false when decodeMarathonAppsStd has to decode the document.
func (d *fastDec) envelope(res *appsResult) bool {
	d.pos, d.depth = 1, 1
	appStart, idSeen := -1, false
	appsSeen := false
	for n := 0; ; n++ {
		ks, ke, plain, more, err := d.objKey(n)
		if err != nil {
			return false
		}
		if !more {
			break
		}
		if !plain {
			return false
		}
		d.ws()
		switch key := d.data[ks:ke]; string(key) {
		case "apps":
			if appsSeen || d.peek() != '[' {
				return false
			}
			appsSeen = true
			res.envelope = true
			if !d.appList(res) {
				return false
			}
			continue
		case "app":
			if appStart >= 0 || d.peek() != '{' {
				return false
			}
			appStart = d.pos
		case "id":
			if idSeen || d.peek() != '"' {
				return false
			}
			idSeen = true
		default:
			if envelopeFields.has(key) {
				return false
			}
		}
		if d.skip() != nil {
			return false
		}
	}
	if d.pos != len(d.data) {
		return false
	}
	switch {
	case appsSeen:
		// With "app" or "id" next to "apps", encoding/json can fail on those and make
		// decodeMarathonAppsStd take its other path: leave such documents to it.
		return appStart < 0 && !idSeen
	case appStart >= 0:
		d.pos, d.depth = appStart, 1
		res.envelope = true
		return d.listItem(res, 0)
	case idSeen:
		// A bare app: decodeMarathonAppsStd fails the whole document when it does not decode.
		d.pos, d.depth = 0, 0
		err := d.app(d.startApp())
		if err == nil {
			res.envelope = true
			res.add(convertApp(&d.w))
		}
		d.endApp(err)
		return err == nil
	}
	return false
}

var envelopeFields = newFoldSet("apps", "app", "id")

// appList decodes a JSON array of apps at d.pos.
func (d *fastDec) appList(res *appsResult) bool {
	d.pos++
	d.depth++
	if d.depth > maxJSONDepth {
		return false
	}
	for i := 0; ; i++ {
		more, err := d.arrNext(i)
		if err != nil {
			return false
		}
		if !more {
			return true
		}
		if !d.listItem(res, i) {
			return false
		}
	}
}

// listItem decodes the i-th app of a list, at d.pos; false means the document is not
// well-formed.
func (d *fastDec) listItem(res *appsResult, i int) bool {
	d.ws()
	start, depth := d.pos, d.depth
	err := d.app(d.startApp())
	if err == nil {
		res.add(convertApp(&d.w))
	}
	d.endApp(err)
	if err == nil {
		return true
	}
	if err == errFastSyntax {
		return false
	}
	// Let encoding/json have this app (after checking it is well-formed JSON, which
	// encoding/json checks for the whole document before it decodes anything).
	d.pos, d.depth = start, depth
	if d.skip() != nil {
		return false
	}
	res.stdDecodes++
	a, decoded, err := decodeAppItem(d.data[start:d.pos], i)
	if !decoded {
		res.decodeErr = true
	}
	res.add(a, err)
	return true
}

func (d *fastDec) app(w *wireApp) error {
	tasksSeen := false
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "id":
			err = d.str(&w.ID)
		case "instances":
			err = d.int(&w.Instances)
		case "labels":
			err = d.strMap(&w.Labels)
		case "version":
			err = d.str(&w.Version)
		case "ports":
			err = decodeSlice(d, &w.Ports, (*fastDec).intElem)
		case "portDefinitions":
			err = decodeSlice(d, &w.PortDefinitions, (*fastDec).portDef)
		case "container":
			err = decodePtr(d, &w.Container, (*fastDec).container)
		case "networks":
			err = decodeSlice(d, &w.Networks, (*fastDec).network)
		case "ipAddress":
			err = decodePtr(d, &w.IPAddress, (*fastDec).ipAddress)
		case "healthChecks":
			err = decodeSlice(d, &w.HealthChecks, (*fastDec).healthCheck)
		case "readinessChecks":
			err = decodeSlice(d, &w.ReadinessChecks, (*fastDec).readinessCheck)
		case "deployments":
			err = decodeSlice(d, &w.Deployments, (*fastDec).deployment)
		case "versionInfo":
			err = decodePtr(d, &w.VersionInfo, (*fastDec).versionInfo)
		case "readinessCheckResults":
			err = decodeSlice(d, &w.ReadinessCheckResults, (*fastDec).readinessResult)
		case "tasks":
			// Into d.tasks: the only slice worth reusing (convertApp copies the tasks). A
			// repeated "tasks" key would decode into what the first left: encoding/json's job.
			if tasksSeen {
				return errFastType
			}
			tasksSeen = true
			w.Tasks = d.tasks[:0]
			err = decodeSlice(d, &w.Tasks, (*fastDec).task)
		default:
			err = d.unknownField(key, &appFields)
		}
		return err
	})
}

func (d *fastDec) portDef(p *wirePortDef) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "port":
			err = d.int(&p.Port)
		case "protocol":
			err = d.strIntern(&p.Protocol, "", internConst)
		case "name":
			err = d.str(&p.Name)
		case "labels":
			err = d.strMap(&p.Labels)
		default:
			err = d.unknownField(key, &portDefFields)
		}
		return err
	})
}

func (d *fastDec) portMapping(p *wirePortMapping) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "containerPort":
			err = d.int(&p.ContainerPort)
		case "hostPort":
			err = d.int(&p.HostPort)
		case "servicePort":
			err = d.int(&p.ServicePort)
		case "protocol":
			err = d.strIntern(&p.Protocol, "", internConst)
		case "name":
			err = d.str(&p.Name)
		case "labels":
			err = d.strMap(&p.Labels)
		default:
			err = d.unknownField(key, &portMappingFields)
		}
		return err
	})
}

func (d *fastDec) container(c *wireContainer) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "type":
			err = d.strIntern(&c.Type, "", internConst)
		case "docker":
			err = decodePtr(d, &c.Docker, (*fastDec).docker)
		case "portMappings":
			err = decodeSlice(d, &c.PortMappings, (*fastDec).portMapping)
		default:
			err = d.unknownField(key, &containerFields)
		}
		return err
	})
}

func (d *fastDec) docker(c *wireDocker) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "network":
			err = d.strIntern(&c.Network, "", internConst)
		case "portMappings":
			err = decodeSlice(d, &c.PortMappings, (*fastDec).portMapping)
		default:
			err = d.unknownField(key, &dockerFields)
		}
		return err
	})
}

// network: the fields have no json tags, so encoding/json matches Marathon's "mode" and
// "name" case-insensitively; both spellings are exact here.
func (d *fastDec) network(nw *wireNetwork) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "mode", "Mode":
			err = d.strIntern(&nw.Mode, "", internConst)
		case "name", "Name":
			err = d.str(&nw.Name)
		default:
			err = d.unknownField(key, &networkFields)
		}
		return err
	})
}

func (d *fastDec) ipAddress(ip *wireIPAddress) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "networkName":
			err = d.str(&ip.NetworkName)
		case "discovery":
			err = decodePtr(d, &ip.Discovery, (*fastDec).ipAddressDisc)
		default:
			err = d.unknownField(key, &ipAddressFields)
		}
		return err
	})
}

func (d *fastDec) ipAddressDisc(disc *wireIPAddressDisc) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "ports":
			err = decodeSlice(d, &disc.Ports, (*fastDec).discoveryPort)
		default:
			err = d.unknownField(key, &ipAddressDiscFields)
		}
		return err
	})
}

func (d *fastDec) discoveryPort(p *wireDiscoveryPort) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "number":
			err = d.int(&p.Number)
		case "name":
			err = d.str(&p.Name)
		case "protocol":
			err = d.strIntern(&p.Protocol, "", internConst)
		default:
			err = d.unknownField(key, &discoveryPortFields)
		}
		return err
	})
}

func (d *fastDec) healthCheck(h *wireHealthCheck) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "protocol":
			err = d.strIntern(&h.Protocol, "", internConst)
		case "path":
			err = d.str(&h.Path)
		case "portIndex":
			err = d.int(&h.PortIndex)
		case "port":
			err = d.int(&h.Port)
		case "command":
			err = decodePtr(d, &h.Command, (*fastDec).command)
		case "gracePeriodSeconds":
			err = d.int(&h.GracePeriodSeconds)
		case "intervalSeconds":
			err = d.int(&h.IntervalSeconds)
		case "timeoutSeconds":
			err = d.int(&h.TimeoutSeconds)
		case "maxConsecutiveFailures":
			err = d.int(&h.MaxConsecutiveFailures)
		case "ignoreHttp1xx":
			err = d.bool(&h.IgnoreHTTP1xx)
		default:
			err = d.unknownField(key, &healthCheckFields)
		}
		return err
	})
}

// command: Marathon's key is "value", which encoding/json matches to Value case-insensitively.
func (d *fastDec) command(c *wireCommand) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "value", "Value":
			err = d.str(&c.Value)
		default:
			err = d.unknownField(key, &commandFields)
		}
		return err
	})
}

func (d *fastDec) readinessCheck(r *wireReadinessCheck) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "name":
			err = d.str(&r.Name)
		case "protocol":
			err = d.strIntern(&r.Protocol, "", internConst)
		case "path":
			err = d.str(&r.Path)
		case "portName":
			err = d.str(&r.PortName)
		default:
			err = d.unknownField(key, &readinessCheckFields)
		}
		return err
	})
}

// deployment: Marathon's key is "id", which encoding/json matches to ID case-insensitively.
func (d *fastDec) deployment(dp *wireDeployment) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "id", "ID":
			err = d.str(&dp.ID)
		default:
			err = d.unknownField(key, &deploymentFields)
		}
		return err
	})
}

func (d *fastDec) versionInfo(v *wireVersionInfo) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "lastConfigChangeAt":
			err = d.str(&v.LastConfigChangeAt)
		default:
			err = d.unknownField(key, &versionInfoFields)
		}
		return err
	})
}

func (d *fastDec) readinessResult(r *wireReadinessResult) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "taskId":
			err = d.str(&r.TaskID)
		case "ready":
			err = d.bool(&r.Ready)
		default:
			err = d.unknownField(key, &readinessResultFields)
		}
		return err
	})
}

func (d *fastDec) task(t *wireTask) error {
	appID, version := d.w.ID, d.w.Version
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "id":
			err = d.str(&t.ID)
		case "appId":
			err = d.strIntern(&t.AppID, appID, nil)
		case "host":
			err = d.str(&t.Host)
		case "slaveId":
			err = d.str(&t.SlaveID)
		case "state":
			err = d.strIntern(&t.State, "", internConst)
		case "stagedAt":
			err = d.str(&t.StagedAt)
		case "startedAt":
			err = d.str(&t.StartedAt)
		case "version":
			err = d.strIntern(&t.Version, version, nil)
		case "ports":
			err = decodeSlice(d, &t.Ports, (*fastDec).intElem)
		case "ipAddresses":
			err = decodeSlice(d, &t.IPAddresses, (*fastDec).taskIP)
		case "healthCheckResults":
			err = decodeSlice(d, &t.HealthCheckResults, (*fastDec).healthResult)
		default:
			err = d.unknownField(key, &taskFields)
		}
		return err
	})
}

func (d *fastDec) taskIP(ip *wireTaskIP) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "ipAddress":
			err = d.str(&ip.IPAddress)
		default:
			err = d.unknownField(key, &taskIPFields)
		}
		return err
	})
}

func (d *fastDec) healthResult(h *wireHealthResult) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "alive":
			err = d.bool(&h.Alive)
		case "consecutiveFailures":
			err = d.int(&h.ConsecutiveFailures)
		default:
			err = d.unknownField(key, &healthResultFields)
		}
		return err
	})
}
