package deploy

import (
	"strings"
	"testing"
)

// webJSON is an honest app definition with one port, service port 10000.
const webJSON = `{"id": "/shop/web", "instances": 4, "cpus": 0.1,
 "labels": {"HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001", "HAPROXY_GROUP": "external"},
 "portDefinitions": [{"port": 10000, "protocol": "tcp", "name": "http"}],
 "networks": [{"mode": "host"}]}`

func TestParseAppHonest(t *testing.T) {
	a, err := ParseApp([]byte(webJSON))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := a.Group()
	sp, _ := a.ServicePort()
	alt, _ := a.AltPort()
	n, _ := a.Instances()
	if a.ID() != "/shop/web" || g != "web" || sp != 10000 || alt != 10001 || n != 4 {
		t.Errorf("id %s group %s port %d alt %d instances %d", a.ID(), g, sp, alt, n)
	}
	// Fields deploy does not know pass through untouched.
	if _, ok := a["networks"]; !ok {
		t.Error("networks dropped")
	}
}

// TestParseAppHostile: each bad definition is refused with an error naming the app and the
// field or label at fault.
func TestParseAppHostile(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       []string
	}{
		{"not an object", `[1,2]`, []string{"not a JSON object"}},
		{"two values", webJSON + webJSON, []string{"more than one JSON value"}},
		{"no id", `{"labels": {}}`, []string{`no "id"`}},
		{"id not a string", `{"id": 7}`, []string{`"id" is a number`}},
		{"id with odd characters", strings.Replace(webJSON, `"/shop/web"`, `"/shop/WEB;rm -rf"`, 1), []string{`app id "/shop/WEB;rm -rf"`, `segment "WEB;rm -rf"`}},
		{"id with a newline", strings.Replace(webJSON, `"/shop/web"`, `"/shop/we\nb"`, 1), []string{"segment"}},
		{"id too long", strings.Replace(webJSON, `"/shop/web"`, `"/`+strings.Repeat("a", 300)+`"`, 1), []string{"longer than 200"}},
		{"labels not an object", `{"id": "/web", "labels": "x"}`, []string{"app /web", `"labels" is a string`}},
		{"label not a string", strings.Replace(webJSON, `"10001"`, `10001`, 1), []string{"app /shop/web", "label HAPROXY_DEPLOYMENT_ALT_PORT is a number"}},
		{"no group label", strings.Replace(webJSON, `"HAPROXY_DEPLOYMENT_GROUP": "web", `, "", 1), []string{"app /shop/web", "no label HAPROXY_DEPLOYMENT_GROUP"}},
		{"bad group label", strings.Replace(webJSON, `"HAPROXY_DEPLOYMENT_GROUP": "web"`, `"HAPROXY_DEPLOYMENT_GROUP": "web\n  acl x"`, 1), []string{"app /shop/web", "label HAPROXY_DEPLOYMENT_GROUP"}},
		{"empty group label", strings.Replace(webJSON, `"HAPROXY_DEPLOYMENT_GROUP": "web"`, `"HAPROXY_DEPLOYMENT_GROUP": ""`, 1), []string{"label HAPROXY_DEPLOYMENT_GROUP"}},
		{"no alt port", strings.Replace(webJSON, `"HAPROXY_DEPLOYMENT_ALT_PORT": "10001", `, "", 1), []string{"app /shop/web", "no label HAPROXY_DEPLOYMENT_ALT_PORT"}},
		{"alt port out of range", strings.Replace(webJSON, `"10001"`, `"70000"`, 1), []string{"app /shop/web", "label HAPROXY_DEPLOYMENT_ALT_PORT=\"70000\"", "1-65535"}},
		{"alt port zero", strings.Replace(webJSON, `"10001"`, `"0"`, 1), []string{"HAPROXY_DEPLOYMENT_ALT_PORT=\"0\""}},
		{"alt port not a number", strings.Replace(webJSON, `"10001"`, `"10001; x"`, 1), []string{"HAPROXY_DEPLOYMENT_ALT_PORT"}},
		{"alt port equals service port", strings.Replace(webJSON, `"10001"`, `"10000"`, 1), []string{"must differ from the service port 10000"}},
		{"no service port", strings.Replace(webJSON, `"portDefinitions": [{"port": 10000, "protocol": "tcp", "name": "http"}],`, "", 1), []string{"app /shop/web", "no service port"}},
		{"service port 0 (auto)", strings.Replace(webJSON, `"port": 10000`, `"port": 0`, 1), []string{"service port port=0", "fixed port"}},
		{"service port out of range", strings.Replace(webJSON, `"port": 10000`, `"port": 99999`, 1), []string{"service port port=99999"}},
		{"huge instances", strings.Replace(webJSON, `"instances": 4`, `"instances": 1e12`, 1), []string{"app /shop/web", `"instances" 1e12`, "0-10000"}},
		{"instances over the limit", strings.Replace(webJSON, `"instances": 4`, `"instances": 10001`, 1), []string{`"instances" 10001`}},
		{"negative instances", strings.Replace(webJSON, `"instances": 4`, `"instances": -1`, 1), []string{`"instances" -1`}},
		{"fractional instances", strings.Replace(webJSON, `"instances": 4`, `"instances": 2.5`, 1), []string{`"instances" 2.5`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseApp([]byte(tc.json))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestServicePortForms: port 0's service port is found and set wherever the definition
// keeps it.
func TestServicePortForms(t *testing.T) {
	for _, tc := range []struct{ name, ports string }{
		{"portDefinitions", `"portDefinitions": [{"port": 10000}]`},
		{"container.portMappings", `"container": {"portMappings": [{"containerPort": 80, "servicePort": 10000}]}`},
		{"container.docker.portMappings", `"container": {"docker": {"portMappings": [{"containerPort": 80, "servicePort": 10000}]}}`},
		{"ports", `"ports": [10000]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseApp([]byte(`{"id": "/web", "labels": {"HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"}, ` + tc.ports + `}`))
			if err != nil {
				t.Fatal(err)
			}
			a.SetServicePort(10001)
			if p, err := a.ServicePort(); err != nil || p != 10001 {
				t.Errorf("after SetServicePort(10001): %d, %v", p, err)
			}
		})
	}
}
