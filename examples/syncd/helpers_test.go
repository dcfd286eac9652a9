package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// testSync is a sync of a generation built by testGen.
type testSync struct {
	name     string
	auto     bool
	mode     sync.Mode
	src      destination.Reader
	dst      destination.Destination
	interval time.Duration // auto-sync reconcile; 0 means 20 ms
}

// testGen builds a generation of in-memory syncs on one in-memory store,
// their rounds counted by m; lock, when not nil, is the store's lock.
func testGen(t *testing.T, m *metrics, syncs ...testSync) *generation {
	t.Helper()
	return testGenLock(t, m, nil, syncs...)
}

func testGenLock(t *testing.T, m *metrics, lock state.Lock, syncs ...testSync) *generation {
	t.Helper()
	g := &generation{syncs: map[string]*managed{}, store: state.NewMemory()}
	if lock != nil {
		g.lock = newTrackedLock(lock)
	}
	for _, ts := range syncs {
		interval := ts.interval
		if interval == 0 {
			interval = 20 * time.Millisecond
		}
		s, err := sync.New(sync.Config{
			Name: ts.name, Source: ts.src, Destination: ts.dst, Mode: ts.mode,
			Store: g.store, Lock: g.stateLock(),
			AutoSync: sync.AutoSync{Disabled: !ts.auto, Interval: interval, Debounce: time.Millisecond,
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, StopGrace: time.Second},
			OnRound: func(rep *sync.Report, err error) { m.observe(ts.name, rep, err) },
		})
		if err != nil {
			t.Fatal(err)
		}
		g.syncs[ts.name] = &managed{cfg: &SyncConfig{Name: ts.name}, syncer: s, auto: ts.auto}
		g.names = append(g.names, ts.name)
	}
	return g
}

// testDaemon returns a daemon whose running generation is g, not started:
// its syncs have their metrics, and no Watch runs.
func testDaemon(g *generation, m *metrics) *daemon {
	if m == nil {
		m = newMetrics()
	}
	d := &daemon{log: slog.New(slog.DiscardHandler), metrics: m, gen: g}
	m.configure(g.names)
	return d
}

// startTestDaemon is testDaemon with g started; the test stops it.
func startTestDaemon(t *testing.T, g *generation, m *metrics) *daemon {
	t.Helper()
	d := testDaemon(g, m)
	d.start(g)
	t.Cleanup(func() { d.current().stop(nil) })
	return d
}

// testToken is the API token of testAPI.
const testToken = "s.syncd-test-token"

// testAPI serves the daemon's API (httpapi, as the api block does) for d
// on loopback, with testToken in a token file; it returns the server and
// the token file.
func testAPI(t *testing.T, d *daemon) (*httptest.Server, string) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := apiHandler(d, &APIConfig{TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, tokenFile
}

// callAPI is call with the API's token.
func callAPI(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runSyncd runs syncd with the configuration at cfgPath, its main listener
// on listen, until stop is called; stop fails the test unless syncd exits 0
// within 30 seconds. stderr is syncd's log.
func runSyncd(t *testing.T, cfgPath, listen string) (stop func(), stderr *syncBuffer) {
	t.Helper()
	runCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // a test that fails before stop still ends syncd
	var stdout syncBuffer
	stderr = new(syncBuffer)
	done := make(chan int, 1)
	go func() {
		done <- runContext(runCtx, []string{"-config", cfgPath, "-listen", listen}, &stdout, stderr)
	}()
	return func() {
		t.Helper()
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("syncd = %d\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("syncd did not stop within 30s")
		}
	}, stderr
}
