package haproxy

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/haproxytest"
)

// readShowStat reads a `show stat` capture of testdata/showstat. Both were taken from Debian's
// HAProxy 2.6.12: haproxy-2.6-all.csv is a full `show stat` of a backend whose servers are up
// (s1), failing a TCP check on a closed port (s2), unchecked (s3), in maintenance (s4),
// draining (s5) and spare server-template slots; haproxy-2.6-httpchk.csv is `show stat -1 4 -1`
// of a server failing an HTTP check whose 503 answer has the reason phrase
// "Busy <script>x</script>".
func readShowStat(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/showstat/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseLiveServersOfHAProxy26(t *testing.T) {
	servers, _, err := ParseLiveStats(readShowStat(t, "haproxy-2.6-all.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range servers {
		names = append(names, s.Backend+"/"+s.Server)
	}
	if got := strings.Join(names, " "); got != "shop_web_10000/s1 shop_web_10000/s2 shop_web_10000/s3 shop_web_10000/s4 "+
		"shop_web_10000/s5 shop_web_10000/slot1 shop_web_10000/slot2" {
		t.Fatalf("servers %s: want s1..s5 and the two slots, no FRONTEND or BACKEND row", got)
	}
	want := []LiveServer{
		{Backend: "shop_web_10000", Server: "s1", Status: "UP", CheckStatus: "L4OK", CheckDesc: "Layer4 check passed",
			Addr: "127.0.0.1:47721", Weight: 1},
		{Backend: "shop_web_10000", Server: "s2", Status: "DOWN", CheckStatus: "L4CON", CheckDesc: "Layer4 connection problem",
			LastCheck: "Connection refused", Addr: "127.0.0.1:59079", Weight: 1},
		{Backend: "shop_web_10000", Server: "s3", Status: "no check", Addr: "127.0.0.1:47721", Weight: 1},
		{Backend: "shop_web_10000", Server: "s4", Status: "MAINT", Addr: "127.0.0.1:47721", Weight: 1},
		{Backend: "shop_web_10000", Server: "s5", Status: "DRAIN", CheckStatus: "L4OK", CheckDesc: "Layer4 check passed",
			Addr: "127.0.0.1:47721", Weight: 1},
	}
	for i, w := range want {
		if servers[i] != w {
			t.Errorf("server %d:\n got %+v\nwant %+v", i, servers[i], w)
		}
	}
}

// The HTTP check's detail is the reason phrase the backend server chose: it is kept as text
// (the page escapes it), bounded in length.
func TestParseLiveServersKeepsACheckDetailAsText(t *testing.T) {
	servers, _, err := ParseLiveStats(readShowStat(t, "haproxy-2.6-httpchk.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := LiveServer{Backend: "web", Server: "s1", Status: "DOWN", CheckStatus: "L7STS", CheckCode: "503",
		CheckDesc: "Layer7 wrong status", LastCheck: "Busy <script>x</script>", Addr: "127.0.0.1:34595", Weight: 1}
	if len(servers) != 1 || servers[0] != want {
		t.Fatalf("servers %+v, want [%+v]", servers, want)
	}
}

func TestParseLiveServersHostileAndOddInput(t *testing.T) {
	header := "# pxname,svname,scur,status,weight,type,check_status,last_chk,addr,\n"
	long := "x" + strings.Repeat("é", liveTextLimit) // the cut at liveTextLimit falls inside a rune
	cases := []struct {
		name, in string
		want     []LiveServer // nil with wantErr
		wantErr  string
	}{
		{"empty answer", "", nil, "no CSV header"},
		{"an error message", "Unknown command. Please enter one of the following commands only :\n", nil, "no CSV header"},
		{"header without status", "# pxname,svname,scur\nb,s,0\n", nil, "lacks pxname, svname or status"},
		{"unbalanced quote", header + "b,s,0,UP,1,2,\"L4OK,x,1.2.3.4:80\n", nil, "show stat line"},
		{"quoted comma and a check in progress", header + "b,s,3,UP 1/3,10,2,* L4CON,\"refused, twice\",[::1]:80,\n",
			[]LiveServer{{Backend: "b", Server: "s", Status: "UP 1/3", CheckStatus: "L4CON", LastCheck: "refused, twice",
				Addr: "[::1]:80", Weight: 10, Sessions: 3}}, ""},
		{"frontend, backend and listener rows skipped", header + "fe,FRONTEND,0,OPEN,,0,,,,\nb,BACKEND,0,UP,1,1,,,,\nfe,sock-1,0,OPEN,,3,,,,\n",
			nil, ""},
		{"short row keeps what it has", header + "b,s,,MAINT,1,2\n",
			[]LiveServer{{Backend: "b", Server: "s", Status: "MAINT", Weight: 1}}, ""},
		{"short row without its type is not a server", header + "b,s,,MAINT\n", nil, ""},
		{"long detail with broken UTF-8", header + "b,s,0,DOWN,1,2,L7STS," + long + "\xff,1.2.3.4:80,\n",
			[]LiveServer{{Backend: "b", Server: "s", Status: "DOWN", CheckStatus: "L7STS", LastCheck: long[:liveTextLimit-1],
				Addr: "1.2.3.4:80", Weight: 1}}, ""},
		{"invalid UTF-8 in a short detail", header + "b,s,0,DOWN,1,2,L7STS,\xffbusy,1.2.3.4:80,\n",
			[]LiveServer{{Backend: "b", Server: "s", Status: "DOWN", CheckStatus: "L7STS", LastCheck: "\uFFFDbusy",
				Addr: "1.2.3.4:80", Weight: 1}}, ""},
		{"no type column: svname decides", "# pxname,svname,status\nb,BACKEND,UP\nb,s,DOWN\n",
			[]LiveServer{{Backend: "b", Server: "s", Status: "DOWN"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := ParseLiveStats(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("got %+v, want %+v", got[i], c.want[i])
				}
			}
		})
	}
}

func newLiveStateForTest(t *testing.T, clock *fakeClock, read func(context.Context) (string, error)) *LiveState {
	t.Helper()
	l, err := NewLiveState(LiveStateConfig{Read: read, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLiveStateReusesAReadingForASecond: within a second of a reading every caller gets it;
// after that the next caller reads HAProxy again. A failed reading is reused the same way.
func TestLiveStateReusesAReadingForASecond(t *testing.T) {
	clock := newFakeClock()
	var reads atomic.Int32
	answer := readShowStat(t, "haproxy-2.6-all.csv")
	var failWith atomic.Pointer[error]
	l := newLiveStateForTest(t, clock, func(ctx context.Context) (string, error) {
		reads.Add(1)
		if err := failWith.Load(); err != nil {
			return "", *err
		}
		return answer, nil
	})
	ctx := context.Background()

	first, err := l.Servers(ctx)
	if err != nil || first.Len() != 7 {
		t.Fatalf("first reading: %d servers, %v", first.Len(), err)
	}
	if s, ok := first.Server("shop_web_10000", "s2"); !ok || s.Status != "DOWN" {
		t.Fatalf("shop_web_10000/s2 = %+v, %v", s, ok)
	}
	clock.Advance(999 * time.Millisecond)
	again, _ := l.Servers(ctx)
	if reads.Load() != 1 || again != first {
		t.Fatalf("999ms later: %d reads, same reading %v; want the first reused", reads.Load(), again == first)
	}
	clock.Advance(time.Millisecond)
	fresh, _ := l.Servers(ctx)
	if reads.Load() != 2 || fresh == first {
		t.Fatalf("a second later: %d reads, same reading %v; want a new reading", reads.Load(), fresh == first)
	}

	down := errors.New("dial unix admin.sock: connect: no such file or directory")
	failWith.Store(&down)
	clock.Advance(time.Second)
	failed, err := l.Servers(ctx)
	if !errors.Is(err, down) || failed == nil || !errors.Is(failed.Err, down) || failed.Len() != 0 {
		t.Fatalf("failed reading %+v, err %v: want the socket's error", failed, err)
	}
	if _, ok := failed.Server("shop_web_10000", "s2"); ok {
		t.Error("a failed reading knows a server")
	}
	if _, err := l.Servers(ctx); !errors.Is(err, down) || reads.Load() != 3 {
		t.Fatalf("right after a failure: %d reads, err %v; want the failure reused", reads.Load(), err)
	}
}

// TestLiveStateCallersShareOneReading: callers that ask while a reading is under way wait for
// it rather than starting their own; a caller whose context ends stops waiting alone.
func TestLiveStateCallersShareOneReading(t *testing.T) {
	clock := newFakeClock()
	var reads atomic.Int32
	release := make(chan struct{})
	answer := readShowStat(t, "haproxy-2.6-all.csv")
	l := newLiveStateForTest(t, clock, func(ctx context.Context) (string, error) {
		reads.Add(1)
		<-release
		// The reading took longer than the TTL: every caller that joined it still gets it.
		clock.Advance(2 * time.Second)
		return answer, nil
	})
	const callers = 10
	results := make(chan *LiveServers, callers)
	for range callers {
		go func() {
			res, err := l.Servers(context.Background())
			if err != nil {
				t.Error(err)
			}
			results <- res
		}()
	}
	cancelled, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := l.Servers(cancelled)
		gaveUp <- err
	}()
	haproxytest.WaitFor(t, 10*time.Second, func() bool { return l.waiting() == callers+1 }, "every caller waiting on the reading")
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(release)
	var first *LiveServers
	for range callers {
		res := <-results
		if first == nil {
			first = res
		}
		if res != first || res.Len() != 7 {
			t.Fatalf("callers got different readings or %d servers", res.Len())
		}
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d callers caused %d readings, want 1", callers, n)
	}
}

// waiting counts the callers waiting on the reading under way.
func (l *LiveState) waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.flight == nil {
		return 0
	}
	return l.flight.waiters
}

// TestApplierServerStatsOfARealHAProxy: an app whose Marathon health check passes, with a task
// whose port is closed, is DOWN in HAProxy's own check; the Applier's socket says so. Before
// HAProxy runs, the reading says why it has none.
func TestApplierServerStatsOfARealHAProxy(t *testing.T) {
	cfg := applierConfig(t)
	s := newApplierStack(t, cfg, false)
	if _, err := s.a.ShowServerStats(context.Background()); !errors.Is(err, ErrHAProxyNotRunning) {
		t.Fatalf("before HAProxy runs: %v, want ErrHAProxyNotRunning", err)
	}
	closed := haproxytest.FreePort(t)
	a := app("/shop/web", withPorts(haproxytest.FreePort(t)), withLabel("HAPROXY_0_BIND_ADDR", "127.0.0.1"),
		withTasks(task("web.1", host("127.0.0.1"), ports(closed), health(true))))
	a.HealthChecks = []discovery.HealthCheck{{Protocol: "TCP", IntervalSeconds: 1, TimeoutSeconds: 1, MaxConsecutiveFailures: 1}}
	s.start(a)
	routes := s.a.AppRoutes("/shop/web")
	if len(routes) != 1 || len(routes[0].Servers) != 1 {
		t.Fatalf("routes %+v: want one server", routes)
	}
	backend, server := routes[0].Backend, routes[0].Servers[0].Name
	l, err := NewLiveState(LiveStateConfig{Read: s.a.ShowServerStats, TTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	var got LiveServer
	haproxytest.WaitFor(t, 20*time.Second, func() bool {
		res, err := l.Servers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got, _ = res.Server(backend, server)
		return got.Status == "DOWN"
	}, "HAProxy's check to mark the server DOWN")
	if got.CheckStatus != "L4CON" || got.LastCheck != "Connection refused" {
		t.Errorf("%s/%s: %+v, want a refused L4 check", backend, server, got)
	}
}

// BenchmarkParseLiveServers parses `show stat -1 4 -1` of 20,000 servers (the captured rows,
// renamed), against ParseStat, which keeps every column of every row.
func BenchmarkParseLiveServers(b *testing.B) {
	capture := strings.Split(strings.TrimSpace(readShowStat(b, "haproxy-2.6-all.csv")), "\n")
	var rows []string
	for _, l := range capture[1:] {
		if strings.HasPrefix(l, "shop_web_10000,s") {
			rows = append(rows, strings.TrimPrefix(l, "shop_web_10000,"))
		}
	}
	var sb strings.Builder
	sb.WriteString(capture[0] + "\n")
	for i := range 20000 {
		sb.WriteString("app" + strconv.Itoa(i/10) + "_10000," + rows[i%len(rows)] + "\n")
	}
	out := sb.String()
	b.Run("ParseLiveServers", func(b *testing.B) {
		for range b.N {
			if s, _, err := ParseLiveStats(out); err != nil || len(s) != 20000 {
				b.Fatal(len(s), err)
			}
		}
	})
	b.Run("ParseStat", func(b *testing.B) {
		for range b.N {
			if _, err := ParseStat(out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A BACKEND row gives the backend's request total: req_tot in HTTP mode, stot in TCP mode
// (req_tot empty); a hostile or odd counter reads as 0, never as a huge or negative number.
func TestParseLiveStatsBackendRequests(t *testing.T) {
	header := "# pxname,svname,stot,status,type,req_tot,\n"
	cases := []struct {
		name, in string
		want     []LiveBackend
	}{
		{"http backend counts requests", header + "web,s1,4,UP,2,9,\nweb,BACKEND,4,UP,1,9,\n",
			[]LiveBackend{{Backend: "web", Requests: 9}}},
		{"tcp backend counts sessions", header + "db,BACKEND,7,UP,1,,\n",
			[]LiveBackend{{Backend: "db", Requests: 7}}},
		{"negative counter", header + "web,BACKEND,-5,UP,1,-3,\n", []LiveBackend{{Backend: "web"}}},
		{"counter past uint64", header + "web,BACKEND,1,UP,1,99999999999999999999999,\n", []LiveBackend{{Backend: "web", Requests: 1}}},
		{"frontend row is not a backend", header + "fe,FRONTEND,3,OPEN,0,3,\n", nil},
		{"a server named BACKEND is a server", header + "web,BACKEND,3,UP,2,3,\n", nil},
		{"no type column: svname decides", "# pxname,svname,status,req_tot\nweb,BACKEND,UP,12\n",
			[]LiveBackend{{Backend: "web", Requests: 12}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, got, err := ParseLiveStats(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("backends %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("backend %d: %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// LiveState keeps the backend rows of a reading beside its servers.
func TestLiveStateKeepsBackendRequests(t *testing.T) {
	out := "# pxname,svname,stot,status,type,req_tot,\nweb,s1,4,UP,2,,\nweb,BACKEND,4,UP,1,21,\n"
	l, err := NewLiveState(LiveStateConfig{Read: func(context.Context) (string, error) { return out, nil }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Servers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := res.Backend("web"); !ok || b.Requests != 21 {
		t.Fatalf("Backend(web) = %+v, %v; want 21 requests", b, ok)
	}
	if _, ok := res.Backend("other"); ok {
		t.Fatal("Backend(other) found in a reading without it")
	}
	if _, ok := (*LiveServers)(nil).Backend("web"); ok {
		t.Fatal("a nil reading has a backend")
	}
}
