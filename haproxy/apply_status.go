package haproxy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ApplierStatus is what GET /v1/haproxy/status reports.
type ApplierStatus struct {
	// ConfigPath is the file HAProxy runs.
	ConfigPath string `json:"config_path"`
	// LastApply is the newest apply; nil before the first.
	LastApply *ApplyRecord `json:"last_apply"`
	// LastReload is the newest apply that reloaded HAProxy; nil before the first.
	LastReload *ApplyRecord `json:"last_reload,omitempty"`
	// Reloads and RuntimeApplies count applies of each kind since start.
	Reloads        int `json:"reloads"`
	RuntimeApplies int `json:"runtime_applies"`
	// Excluded are the apps and ports left out of the running configuration: for a label or
	// template error, or because HAProxy's validation failed on their lines.
	Excluded []ExcludedApp `json:"excluded"`
	// Warnings are labels that were ignored.
	Warnings []Warning `json:"warnings"`
	// Process is the supervised HAProxy.
	Process ProcessStatus `json:"process"`
}

// ApplyRecord describes one apply.
type ApplyRecord struct {
	// Kind is "runtime" (Runtime API only), "reload", "write" (before HAProxy runs, the
	// configuration is only written) or "failed".
	Kind   string    `json:"kind"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Duration is how long the apply took, validation and reload confirmation included.
	Duration string `json:"duration"`
	// Commands is the number of Runtime API commands sent.
	Commands int `json:"commands"`
	// Validations is the number of `haproxy -c` runs: at most 2 when HAProxy's alerts name
	// what it rejects; about log2(changed apps) more per app that makes the check hang or
	// crash without an alert.
	Validations int `json:"validations"`
	// Validation is "partial" when the newest `haproxy -c` checked only the sections that
	// changed since the configuration HAProxy runs (with HEAD and stubs for what they name;
	// validate_partial.go), "full" when it checked the whole configuration; "" without one.
	// ValidatedSections counts the changed sections a partial check held.
	Validation        string `json:"validation,omitempty"`
	ValidatedSections int    `json:"validated_sections,omitempty"`
	Error             string `json:"error,omitempty"`
}

// ExcludedApp is an app or port left out, with why.
type ExcludedApp struct {
	AppID string `json:"app_id"`
	// Port is the port index, -1 for the whole app.
	Port   int    `json:"port"`
	Reason string `json:"reason"`
	// HAProxy holds HAProxy's own alert lines when validation excluded the app.
	HAProxy []string `json:"haproxy,omitempty"`
}

func (a *Applier) runningModel() *Model {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running
}

// renderedNow is the rendering of the running model, nil before the first.
func (a *Applier) renderedNow() *Rendered {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rendered
}

func (a *Applier) publish(m *Model, r *Rendered) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running, a.rendered, a.applied = m, r, true
}

// record stores an apply in the status; m (when not nil) gives the exclusions and warnings.
func (a *Applier) record(rec ApplyRecord, start time.Time, err error, m *Model) {
	rec.At = start
	rec.Duration = time.Since(start).Round(time.Microsecond).String()
	if err != nil {
		rec.Error = err.Error()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status.LastApply = &rec
	switch rec.Kind {
	case "reload":
		a.status.Reloads++
		a.status.LastReload = &rec
	case "runtime":
		a.status.RuntimeApplies++
	}
	if m != nil {
		a.setModelExclusionsLocked(m)
	}
}

// noteExclusions updates the reported exclusions when a build changed only them.
func (a *Applier) noteExclusions(m *Model) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setModelExclusionsLocked(m)
}

// setValidationExclusions keeps HAProxy's alerts per app from the newest validation, for the
// status of the apps it left out.
func (a *Applier) setValidationExclusions(alerts map[string][]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.validationAlerts = alerts
}

func (a *Applier) setModelExclusionsLocked(m *Model) {
	ex := make([]ExcludedApp, 0, len(m.Excluded))
	for _, e := range m.Excluded {
		ex = append(ex, ExcludedApp{AppID: e.AppID, Port: e.Port, Reason: e.Reason, HAProxy: a.validationAlerts[e.AppID]})
	}
	a.status.Excluded = ex
	a.status.Warnings = slices.Clone(m.Warnings)
	metricExcluded.Set(float64(len(ex)))
}

// Status returns the state of the last apply, the apps left out and HAProxy's process.
func (a *Applier) Status() ApplierStatus {
	a.mu.Lock()
	st := a.status
	a.mu.Unlock()
	if st.Excluded == nil {
		st.Excluded = []ExcludedApp{}
	}
	if st.Warnings == nil {
		st.Warnings = []Warning{}
	}
	if a.proc != nil {
		st.Process = a.proc.Status()
	}
	return st
}

// Config returns the configuration HAProxy runs, nil before the first.
func (a *Applier) Config() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rendered == nil {
		return nil
	}
	return a.rendered.Config
}

// Healthy returns nil while HAProxy runs a configuration lodestar applied; before the first,
// the error says why the last attempt failed.
func (a *Applier) Healthy() error {
	a.mu.Lock()
	applied, last := a.applied, a.status.LastApply
	a.mu.Unlock()
	if !applied {
		if last != nil && last.Error != "" {
			return fmt.Errorf("no HAProxy configuration applied yet: %s", last.Error)
		}
		return errors.New("no HAProxy configuration applied yet")
	}
	if a.proc != nil && !a.proc.Status().Running {
		return errors.New("HAProxy is not running")
	}
	return nil
}

// Applied returns nil once the first configuration is applied (the "first config applied"
// readiness check). Apps left out do not make lodestar unready.
func (a *Applier) Applied() error {
	select {
	case <-a.written:
	default:
		// Why the last attempt failed (HAProxy's open files, say) is what the operator must fix.
		a.mu.Lock()
		last := a.status.LastApply
		a.mu.Unlock()
		if last != nil && last.Error != "" {
			return fmt.Errorf("no HAProxy configuration written yet: %s", last.Error)
		}
		return errors.New("no HAProxy configuration written yet")
	}
	if !a.hasProcess() {
		return errors.New("HAProxy has not started yet")
	}
	return nil
}

// VhostMap and AppMap return marathon-lb's domain2backend and app2backend maps of the running
// model.
func (a *Applier) VhostMap() []byte {
	return a.mapText(func(m *Model) []MapEntry { return m.DomainMap })
}

// AppMap returns marathon-lb's app2backend map.
func (a *Applier) AppMap() []byte { return a.mapText(func(m *Model) []MapEntry { return m.AppMap }) }

func (a *Applier) mapText(entries func(*Model) []MapEntry) []byte {
	m := a.runningModel()
	if m == nil {
		return nil
	}
	return mapFile(entries(m))
}

var metricExcluded = promauto.NewGauge(prometheus.GaugeOpts{
	Namespace: "lodestar", Subsystem: "haproxy", Name: "excluded_apps",
	Help: "Apps and ports left out of the running HAProxy configuration, for a label or template error or a failed validation.",
})
