package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// fakeMesosDNS answers from fixed tables, as the DNS front end's record index would.
type fakeMesosDNS struct {
	hosts    map[string][]HostRecord
	services map[string][]ServiceRecord
}

func (f fakeMesosDNS) Hosts(name string) []HostRecord {
	return f.hosts[strings.TrimSuffix(strings.ToLower(name), ".")]
}

func (f fakeMesosDNS) Services(name string) []ServiceRecord {
	return f.services[strings.TrimSuffix(strings.ToLower(name), ".")]
}
func (fakeMesosDNS) Enumerate() any { return map[string]any{"frameworks": []string{"marathon"}} }
func (fakeMesosDNS) AXFR() any      { return map[string]any{"Domain": "mesos"} }
func (fakeMesosDNS) Config() any    { return map[string]any{"Password": "(redacted)"} }

func TestMesosDNSEndpoints(t *testing.T) {
	s := newServer(t, Config{Version: "v9.9"}, newRegistry(t))
	s.MountMesosDNS(fakeMesosDNS{
		hosts: map[string][]HostRecord{
			"web.marathon.mesos": {{Host: "web.marathon.mesos.", IP: "10.0.0.1"}, {Host: "web.marathon.mesos.", IP: "10.0.0.2"}},
		},
		services: map[string][]ServiceRecord{
			"_web._tcp.marathon.mesos": {{Service: "_web._tcp.marathon.mesos.", Host: "web-abcde-s1.marathon.slave.mesos.", IP: "10.0.0.1", Port: "31000"}},
		},
	})
	tests := []struct {
		path string
		code int
		want string
	}{
		{"/v1/version", 200, `{"Service":"lodestar (Mesos-DNS compatible)","URL":"https://github.com/lodestar-lb/lodestar","Version":"v9.9"}`},
		{"/v1/config", 200, `{"Password":"(redacted)"}`},
		{"/v1/hosts/web.marathon.mesos", 200, `[{"host":"web.marathon.mesos.","ip":"10.0.0.1"},{"host":"web.marathon.mesos.","ip":"10.0.0.2"}]`},
		{"/v1/hosts/WEB.Marathon.mesos.", 200, `[{"host":"web.marathon.mesos.","ip":"10.0.0.1"},{"host":"web.marathon.mesos.","ip":"10.0.0.2"}]`},
		{"/v1/hosts/nope.marathon.mesos", 404, `[]`},
		{"/v1/services/_web._tcp.marathon.mesos.", 200, `[{"service":"_web._tcp.marathon.mesos.","host":"web-abcde-s1.marathon.slave.mesos.","ip":"10.0.0.1","port":"31000"}]`},
		{"/v1/services/_nope._tcp.marathon.mesos", 404, `[]`},
		{"/v1/enumerate", 200, `{"frameworks":["marathon"]}`},
		{"/v1/axfr", 200, `{"Domain":"mesos"}`},
	}
	for _, tc := range tests {
		code, body := get(t, s.Router(), http.MethodGet, tc.path)
		if code != tc.code {
			t.Errorf("GET %s = %d, want %d (%s)", tc.path, code, tc.code, body)
		}
		var got, want any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("GET %s: body %q is not JSON: %v", tc.path, body, err)
			continue
		}
		json.Unmarshal([]byte(tc.want), &want)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Errorf("GET %s = %s, want %s", tc.path, gb, wb)
		}
	}
}
