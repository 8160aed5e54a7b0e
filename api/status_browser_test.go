package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/lodestar-lb/lodestar/discovery"
)

// chromiumPath is Debian's Chromium, which `make test` installs.
const chromiumPath = "/usr/bin/chromium"

// browserProblems collects what the page wrote to the console at level warning or error,
// and the exceptions it threw.
type browserProblems struct {
	mu   sync.Mutex
	list []string
}

func (p *browserProblems) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

// take returns the problems collected so far and forgets them.
func (p *browserProblems) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.list
	p.list = nil
	return list
}

// TestStatusPageInBrowser loads the status page in headless Chromium: no console error or
// warning, no exception, the app and its backends in the rendered text, an automatic refresh
// that shows a new app, and no horizontal scrolling on a phone.
func TestStatusPageInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("no Chromium at %s (%v): apt-get install chromium, or run make test", chromiumPath, err)
	}
	shots := t.TempDir()
	if dir := os.Getenv("LODESTAR_SCREENSHOT_DIR"); dir != "" {
		shots = dir // keep the screenshots after the test, to look at them
	}

	reg := fixtureRegistry(t)
	s := newServer(t, Config{Listen: "127.0.0.1:0", Version: "browser-test"}, reg)
	s.SetFrontends(Frontends{
		Routing: shopRouting(),
		DNS:     statusDNS{"/shop/web": {"_web-shop._tcp.marathon.mesos.", "web-shop.marathon.mesos."}},
	})
	s.MountStatusPage()
	srvCtx, stopServer := context.WithCancel(context.Background())
	done := run(t, srvCtx, s)
	defer func() {
		stopServer()
		if err := waitRun(t, done); err != nil {
			t.Errorf("API server: %v", err)
		}
	}()
	url := "http://" + s.Addr() + "/"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	browser, closeBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer closeBrowser()

	var problems browserProblems
	loads := make(chan struct{}, 16)
	err := chromedp.Listen(browser, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				problems.add("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			problems.add("exception at %s:%d: %s %s", d.URL, d.LineNumber+1, d.Text, desc)
		case *cdplog.EventEntryAdded:
			if e := ev.Entry; e.Level == cdplog.EntryLevelError || e.Level == cdplog.EntryLevelWarning {
				problems.add("browser log %s (%s): %s %s", e.Level, e.Source, e.Text, e.URL)
			}
		case *page.EventLoadEventFired:
			select {
			case loads <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	checkProblems := func(when string) {
		t.Helper()
		for _, p := range problems.take() {
			t.Errorf("%s: %s", when, p)
		}
	}
	bodyText := func() string {
		t.Helper()
		text, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatalf("reading the page text: %v", err)
		}
		return text
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(shots, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	// noOverflow checks that the page is no wider than the viewport. On a mobile viewport
	// Chromium zooms out to fit a page that is too wide, which widens window.innerWidth with
	// it, so the width is compared with the emulated one too.
	noOverflow := func(viewport string, width int) {
		t.Helper()
		widths, err := chromedp.Run(browser, chromedp.Evaluate[[]int](
			`[document.documentElement.scrollWidth, window.innerWidth]`))
		if err != nil {
			t.Fatalf("measuring the page: %v", err)
		}
		t.Logf("%s: scrollWidth %d, innerWidth %d", viewport, widths[0], widths[1])
		if widths[0] > widths[1] || widths[0] > width {
			t.Errorf("%s: the page scrolls sideways: scrollWidth %d, innerWidth %d, viewport width %d",
				viewport, widths[0], widths[1], width)
		}
	}

	// Desktop, with the automatic refresh on.
	if err := chromedp.Do(browser, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url)); err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
	<-loads
	text := bodyText()
	for _, want := range []string{"/shop/web", "10.0.0.1:31001", "shop.example.com", "web-shop.marathon.mesos.",
		"/bad/app", "bogus<b>", "/nginx-green", "ready"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, text)
		}
	}
	// The stylesheet applied: the Content-Security-Policy let the inline style through.
	border, err := chromedp.Run(browser, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".app")).borderTopStyle`))
	if err != nil || border != "solid" {
		t.Errorf("app card border style = %q, %v; want solid (is the stylesheet blocked?)", border, err)
	}
	noOverflow("desktop 1280x900", 1280)
	screenshot("status-desktop.png")

	// The page refreshes itself: a new app shows up without anyone reloading.
	sendCtx, cancelSend := context.WithTimeout(ctx, waitTimeout)
	defer cancelSend()
	if err := reg.Send(sendCtx, discovery.UpsertApp{App: &discovery.App{ID: "/added/after-load", Instances: 1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-loads:
	case <-ctx.Done():
		t.Fatalf("the page did not refresh itself: %v", ctx.Err())
	}
	if text := bodyText(); !strings.Contains(text, "/added/after-load") {
		t.Errorf("after the automatic refresh the page lacks /added/after-load:\n%s", text)
	}
	checkProblems("desktop")

	// From here on the refresh is off, so that nothing reloads while the test measures. A
	// narrow window still has the table layout, at its narrowest.
	if err := chromedp.Do(browser, chromedp.EmulateViewport(730, 1000), chromedp.Navigate(url+"?refresh=off")); err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
	noOverflow("narrow window 730x1000", 730)

	// A phone.
	if err := chromedp.Do(browser,
		chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateScale(3)),
		chromedp.Navigate(url+"?refresh=off"),
	); err != nil {
		t.Fatalf("loading %s on a phone viewport: %v", url, err)
	}
	stacked, err := chromedp.Run(browser, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("table.stack thead")).display`))
	if err != nil || stacked != "none" {
		t.Errorf("phone: table header display = %q, %v; want none (stacked tables)", stacked, err)
	}
	if text := bodyText(); !strings.Contains(text, "10.0.0.1:31001") {
		t.Errorf("phone: rendered page lacks 10.0.0.1:31001:\n%s", text)
	}
	noOverflow("phone 390x844", 390)
	screenshot("status-phone.png")
	checkProblems("phone")

	if err := chromedp.Cancel(browser); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("closing Chromium: %v", err)
	}
}
