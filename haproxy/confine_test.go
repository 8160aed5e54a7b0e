package haproxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/lodestar-lb/lodestar/templates"
)

// confineValues are representative values of one HTTP service port, set the way the builder
// sets them (build.go render): a vhost, a path, auth, rewrite paths, a health check, one slot.
func confineValues() *templates.Values {
	var v templates.Values
	for f, s := range map[templates.Field]string{
		templates.FieldBackend:                           "shop_web_10000",
		templates.FieldAppID:                             "/shop/web",
		templates.FieldCleanedUpAppID:                    cleanedUp("/shop/web"),
		templates.FieldServicePort:                       "10000",
		templates.FieldMode:                              "http",
		templates.FieldBalance:                           "roundrobin",
		templates.FieldBindAddr:                          "*",
		templates.FieldBindOptions:                       " accept-proxy",
		templates.FieldSSLCert:                           " ssl crt /etc/ssl/shop.pem",
		templates.FieldHostname:                          "shop.example.com",
		templates.FieldHostnames:                         "shop.example.com www.shop.example.com",
		templates.FieldCleanedUpHostname:                 cleanedUp("shop.example.com") + "_shop_web_10000",
		templates.FieldPath:                              "/api",
		templates.FieldRealm:                             "shop",
		templates.FieldUser:                              "admin",
		templates.FieldPasswd:                            "$6$salt$hash",
		templates.FieldProxyPath:                         "/api",
		templates.FieldRootPath:                          "/shop",
		templates.FieldRedirPath:                         "/home",
		templates.FieldHAProxyDir:                        "/run/lodestar",
		templates.FieldNetworkAllowed:                    "10.0.0.0/8",
		templates.FieldHealthCheckPortIndex:              "0",
		templates.FieldHealthCheckPort:                   "31001",
		templates.FieldHealthCheckProtocol:               "HTTP",
		templates.FieldHealthCheckPath:                   "/health",
		templates.FieldHealthCheckTimeoutSeconds:         "20",
		templates.FieldHealthCheckIntervalSeconds:        "60",
		templates.FieldHealthCheckGracePeriodSeconds:     "300",
		templates.FieldHealthCheckMaxConsecutiveFailures: "3",
		templates.FieldHealthCheckFalls:                  "4",
		templates.FieldHealthCheckPortOptions:            " port 31001",
		templates.FieldServerName:                        "s1",
		templates.FieldServerID:                          "1",
		templates.FieldHost:                              "agent1.example.com",
		templates.FieldHostIPv4:                          "10.0.0.5",
		templates.FieldPort:                              "31000",
		templates.FieldCookieOptions:                     " cookie s1",
		templates.FieldHealthCheckOptions:                " check inter 60s fall 4 port 31001",
		templates.FieldOtherOptions:                      "",
	} {
		v.Set(f, s)
	}
	return &v
}

func confineScope(label string) AppScope {
	s := NewAppScope(label, "/shop/web", "shop_web_10000", []string{"shop.example.com", "www.shop.example.com"})
	s.ServicePort = 10000
	s.SSLCert = "/etc/ssl/shop.pem"
	s.ServerName, s.ServerAddr, s.ServerHost = "s1", "10.0.0.5", "agent1.example.com"
	return s
}

// TestConfineBuiltinTemplates: every built-in per-app template, rendered with representative
// values, passes the confined check of the section it renders into.
func TestConfineBuiltinTemplates(t *testing.T) {
	n := 0
	for _, spec := range templates.Specs() {
		if !spec.PerApp {
			continue
		}
		kind, ok := TemplateSection(spec.Name)
		if !ok {
			t.Errorf("per-app template %s has no section kind", spec.Name)
			continue
		}
		tmpl, err := templates.Builtin().Get(spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		text, err := tmpl.Execute(confineValues())
		if err != nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
		if err := ConfineSnippet(kind, text, confineScope("HAPROXY_0_"+spec.Name)); err != nil {
			t.Errorf("built-in %s (%s):\n%s\n%v", spec.Name, kind, text, err)
		}
		n++
	}
	if n < 30 {
		t.Errorf("checked %d per-app templates, want every one (over 30)", n)
	}
}

var _ = errors.Is
var _ = strings.Contains
