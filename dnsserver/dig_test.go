package dnsserver

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// digReply is one message of dig's output.
type digReply struct {
	status                        string
	flags                         []string
	answer, authority, additional []string // zone-file lines, normalised by zoneText
	udpSize                       string   // the OPT record's buffer size; "" without one
}

// runDig runs dig against addr with args and parses every reply it prints.
func runDig(t *testing.T, addr string, args ...string) []digReply {
	t.Helper()
	path, err := exec.LookPath("dig")
	if err != nil {
		t.Fatalf("dig is not installed: apt-get install dnsutils, or run make test")
	}
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(path, append([]string{"@" + host, "-p", port, "+time=5", "+tries=1"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 2000))
	}
	var replies []digReply
	for _, msg := range strings.Split(string(out), ";; ->>HEADER<<-")[1:] {
		var r digReply
		section := (*[]string)(nil)
		for _, line := range strings.Split(msg, "\n") {
			switch {
			case strings.Contains(line, "status: "):
				r.status = strings.TrimSuffix(strings.Fields(line[strings.Index(line, "status: "):])[1], ",")
			case strings.HasPrefix(line, ";; flags:"):
				f, _, _ := strings.Cut(strings.TrimPrefix(line, ";; flags:"), ";")
				r.flags = strings.Fields(f)
			case strings.HasPrefix(line, "; EDNS:"):
				if _, size, ok := strings.Cut(line, "udp: "); ok {
					r.udpSize = strings.TrimSpace(size)
				}
			case line == ";; ANSWER SECTION:":
				section = &r.answer
			case line == ";; AUTHORITY SECTION:":
				section = &r.authority
			case line == ";; ADDITIONAL SECTION:":
				section = &r.additional
			case strings.TrimSpace(line) == "":
				section = nil
			case section != nil && !strings.HasPrefix(line, ";"):
				*section = append(*section, line)
			}
		}
		r.answer, r.authority, r.additional = zoneText(t, r.answer...), zoneText(t, r.authority...), zoneText(t, r.additional...)
		replies = append(replies, r)
	}
	if len(replies) == 0 {
		t.Fatalf("dig %s printed no reply:\n%s", strings.Join(args, " "), tail(string(out), 2000))
	}
	return replies
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func TestDig(t *testing.T) {
	s := startServer(t, Config{}, testIndex())
	srvAnswer := []string{"_app._tcp.marathon.mesos. 60 IN SRV 0 0 31000 app-abcde-s1.slave.mesos.", "_app._tcp.marathon.mesos. 60 IN SRV 0 0 31001 app-fghij-s2.slave.mesos."}
	srvExtra := []string{"app-abcde-s1.slave.mesos. 60 IN A 127.0.0.21", "app-fghij-s2.slave.mesos. 60 IN A 127.0.0.22", "app-fghij-s2.slave.mesos. 60 IN AAAA fd01:b::22"}
	for _, tc := range []struct {
		args                   []string
		status                 string
		answer, authority, add []string
	}{
		{[]string{"app.marathon.mesos", "A"}, "NOERROR",
			[]string{"app.marathon.mesos. 60 IN A 127.0.0.11", "app.marathon.mesos. 60 IN A 127.0.0.12", "app.marathon.mesos. 60 IN A 127.0.0.13"}, nil, nil},
		{[]string{"v6.marathon.mesos", "AAAA"}, "NOERROR", []string{"v6.marathon.mesos. 60 IN AAAA fd01:b::1"}, nil, nil},
		{[]string{"_app._tcp.marathon.mesos", "SRV"}, "NOERROR", srvAnswer, nil, srvExtra},
		{[]string{"+noedns", "_app._tcp.marathon.mesos", "SRV"}, "NOERROR", srvAnswer, nil, srvExtra},
		{[]string{"mesos", "SOA"}, "NOERROR", []string{"mesos. 60 IN SOA ns1.mesos. root.ns1.mesos. 42 60 600 86400 5"}, nil, nil},
		{[]string{"mesos", "NS"}, "NOERROR", []string{"mesos. 60 IN NS ns1.mesos."}, nil, []string{"ns1.mesos. 60 IN A 127.0.0.1"}},
		{[]string{"nope.marathon.mesos", "A"}, "NXDOMAIN", nil, []string{soaLine}, nil},
		{[]string{"app.marathon.mesos", "AAAA"}, "NOERROR", nil, []string{soaLine}, nil},
		{[]string{"app.marathon.mesos", "SRV"}, "NOERROR", nil, []string{soaLine}, nil},
		{[]string{"+tcp", "_app._tcp.marathon.mesos", "SRV"}, "NOERROR", srvAnswer, nil, srvExtra},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runDig(t, s.Addr(), tc.args...)[0]
			if r.status != tc.status || !slices.Contains(r.flags, "aa") || slices.Contains(r.flags, "tc") {
				t.Errorf("status %s flags %v, want %s with aa, without tc", r.status, r.flags, tc.status)
			}
			for _, sec := range []struct {
				name      string
				got, want []string
			}{{"answer", r.answer, zoneText(t, tc.answer...)}, {"authority", r.authority, zoneText(t, tc.authority...)}, {"additional", r.additional, zoneText(t, tc.add...)}} {
				if !slices.Equal(sec.got, sec.want) {
					t.Errorf("%s section:\n got %q\nwant %q", sec.name, sec.got, sec.want)
				}
			}
		})
	}
}

func TestDigTwentySRV(t *testing.T) {
	s := startServer(t, Config{}, testIndex())
	answer, extra := srvLines("big", 20)
	t.Run("bufsize 4096: complete", func(t *testing.T) {
		r := runDig(t, s.Addr(), "+bufsize=4096", "_big._tcp.marathon.mesos", "SRV")[0]
		if slices.Contains(r.flags, "tc") || r.udpSize != "4096" {
			t.Errorf("flags %v, OPT udp %q; want no tc and 4096 echoed", r.flags, r.udpSize)
		}
		if !slices.Equal(r.answer, zoneText(t, answer...)) || !slices.Equal(r.additional, zoneText(t, extra...)) {
			t.Errorf("got %d answers and %d additional records, want all 20 and their 20 addresses:\n%q\n%q", len(r.answer), len(r.additional), r.answer, r.additional)
		}
	})
	t.Run("no EDNS0: truncated", func(t *testing.T) {
		r := runDig(t, s.Addr(), "+noedns", "+ignore", "_big._tcp.marathon.mesos", "SRV")[0]
		if !slices.Contains(r.flags, "tc") || len(r.answer) == 0 || len(r.answer) >= 20 || len(r.additional) != 0 {
			t.Errorf("flags %v, %d answers, %d additional; want tc, some of the 20 answers, no additional", r.flags, len(r.answer), len(r.additional))
		}
		for _, a := range r.answer {
			if !slices.Contains(zoneText(t, answer...), a) {
				t.Errorf("answer %q is none of the 20", a)
			}
		}
	})
	t.Run("no EDNS0: dig retries over TCP and gets all", func(t *testing.T) {
		r := runDig(t, s.Addr(), "+noedns", "_big._tcp.marathon.mesos", "SRV")
		last := r[len(r)-1]
		if len(last.answer) != 20 || len(last.additional) != 20 {
			t.Errorf("after the TCP retry: %d answers, %d additional; want 20 and 20", len(last.answer), len(last.additional))
		}
	})
}

func TestDigThousandQueriesOnOneTCPConnection(t *testing.T) {
	s := startServer(t, Config{}, testIndex())
	var args, want []string
	for i := range 1000 {
		name := srvTarget("huge", i%400)
		args = append(args, name, "A")
		want = append(want, fmt.Sprintf("%s 60 IN A %s", name, srvTargetIP(i%400)))
	}
	conns := counterValue(t, srvTCPConns)
	replies := runDig(t, s.Addr(), append([]string{"+tcp", "+keepopen"}, args...)...)
	if len(replies) != 1000 {
		t.Fatalf("%d replies, want 1000", len(replies))
	}
	for i, r := range replies {
		if r.status != "NOERROR" || !slices.Equal(r.answer, zoneText(t, want[i])) {
			t.Fatalf("query %d: %s %q, want %q", i, r.status, r.answer, want[i])
		}
	}
	if n := counterValue(t, srvTCPConns) - conns; n != 1 {
		t.Errorf("dig opened %v TCP connections, want 1", n)
	}
}

func TestPipelinedQueriesOnOneTCPConnection(t *testing.T) {
	s := startServer(t, Config{}, testIndex())
	co, err := (&dns.Client{Net: "tcp"}).Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	const n = 1000
	want := map[uint16]string{}
	queries := make([]*dns.Msg, n)
	for i := range n {
		q := newQuery(srvTarget("huge", i%400), dns.TypeA, 0)
		q.Id = uint16(i + 1)
		queries[i] = q
		want[q.Id] = srvTargetIP(i % 400).String()
	}
	// Every query goes out before the first answer is read.
	written := make(chan error, 1)
	go func() {
		for _, q := range queries {
			if err := co.WriteMsg(q); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	for range n {
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("after %d answers: %v", n-len(want), err)
		}
		ip, ok := want[r.Id]
		if !ok {
			t.Fatalf("answer with unknown or repeated ID %d", r.Id)
		}
		if got := aAnswer(t, r); got != ip {
			t.Fatalf("ID %d: %s, want %s", r.Id, got, ip)
		}
		delete(want, r.Id)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
}

// counterValue reads a counter's current value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// gaugeValue reads a gauge's current value.
func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
