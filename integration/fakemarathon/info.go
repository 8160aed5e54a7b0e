package fakemarathon

import (
	"net"
	"net/http"
	"strconv"
)

// defaultInfo is a realistic Marathon 1.9 /v2/info object with the field
// names of go-marathon's marathon.Info. "leader", marathon_config.hostname
// and http_config.http_port are filled in per request unless SetInfo sets
// them.
func defaultInfo() map[string]any {
	return map[string]any{
		"name":        "marathon",
		"version":     "1.9.109",
		"buildref":    "1e6ee3e1d0a1b5bfa1d5b11f5a7bb1a9b8b0e4a5",
		"elected":     true,
		"frameworkId": "a4f2a1e9-8b3c-4f4a-9b8e-2c1d0e5f6a7b-0000",
		"event_subscriber": map[string]any{
			"type":           "http_callback",
			"http_endpoints": []any{},
		},
		"http_config": map[string]any{
			"assets_path": nil,
			"https_port":  8443,
		},
		"marathon_config": map[string]any{
			"checkpoint":                         true,
			"executor":                           "//cmd",
			"failover_timeout":                   604800,
			"framework_name":                     "marathon",
			"ha":                                 true,
			"leader_proxy_connection_timeout_ms": 5000,
			"leader_proxy_read_timeout_ms":       10000,
			"local_port_max":                     20000,
			"local_port_min":                     10000,
			"master":                             "zk://127.0.0.1:2181/mesos",
			"mesos_leader_ui_url":                "http://127.0.0.1:5050/",
			"webui_url":                          nil,
			"mesos_role":                         "*",
			"mesos_user":                         "root",
			"reconciliation_initial_delay":       15000,
			"reconciliation_interval":            600000,
			"task_launch_timeout":                300000,
			"task_reservation_timeout":           20000,
		},
		"zookeeper_config": map[string]any{
			"zk":                "zk://127.0.0.1:2181/marathon",
			"zk_future_timeout": map[string]any{"duration": 10000},
			"zk_hosts":          "127.0.0.1:2181",
			"zk_path":           "/marathon",
			"zk_state":          "/marathon",
			"zk_timeout":        10000,
		},
	}
}

// SetInfo lets fn edit the object served by /v2/info (e.g. to change
// "version" or marathon_config.mesos_role). fn runs with the server locked
// and must not call the Server.
func (s *Server) SetInfo(fn func(info map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.info)
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	info := deepCopy(s.info).(map[string]any)
	leader, addr, hidden := s.leaderLocked(), s.addr, s.noLeader
	s.mu.Unlock()
	if hidden {
		handleNotFound(w, r)
		return
	}

	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	if _, ok := info["leader"]; !ok {
		info["leader"] = leader
	}
	if mc, ok := info["marathon_config"].(map[string]any); ok {
		if _, ok := mc["hostname"]; !ok {
			mc["hostname"] = host
		}
	}
	if hc, ok := info["http_config"].(map[string]any); ok {
		if _, ok := hc["http_port"]; !ok {
			hc["http_port"] = port
		}
	}
	writeJSON(w, http.StatusOK, info)
}
