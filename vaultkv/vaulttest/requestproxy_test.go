package vaulttest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// backend stands for Vault: it answers each request with its method and
// path, and counts the requests it served.
type backend struct {
	*httptest.Server
	served atomic.Int64
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.served.Add(1)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	}))
	t.Cleanup(b.Close)
	return b
}

// newRequestProxy returns a backend and a RequestProxy in front of it,
// closed when the test ends.
func newRequestProxy(t *testing.T) (*backend, *vaulttest.RequestProxy) {
	t.Helper()
	b := newBackend(t)
	return b, (&vaulttest.Server{Addr: b.URL}).RequestProxy(t)
}

// send sends a request with body (none if "") through p.
func send(ctx context.Context, p *vaulttest.RequestProxy, method, path, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.URL()+"/v1/"+path, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

// within is a context that gives up after d.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRequestProxyCountsAndLog(t *testing.T) {
	_, p := newRequestProxy(t)
	ctx := context.Background()
	for _, r := range []vaulttest.Request{{"GET", "secret/data/a"}, {"PUT", "secret/data/a"}, {"LIST", "secret/metadata/"}, {"GET", "secret/data/a"}} {
		got, err := send(ctx, p, r.Method, r.Path, "x")
		if want := r.Method + " /v1/" + r.Path + " x"; err != nil || got != want {
			t.Fatalf("%v: %q, %v; want %q", r, got, err, want)
		}
	}
	if n := p.Count("secret/data/a"); n != 3 {
		t.Errorf("Count(secret/data/a) = %d, want 3", n)
	}
	if n := p.Count("secret/metadata/"); n != 1 {
		t.Errorf("Count(secret/metadata/) = %d, want 1", n)
	}
	if n := p.Count("secret/data/b"); n != 0 {
		t.Errorf("Count(secret/data/b) = %d, want 0", n)
	}
	before := p.Total()
	if before != 4 {
		t.Fatalf("Total = %d, want 4", before)
	}
	if _, err := send(ctx, p, "DELETE", "secret/data/a", ""); err != nil {
		t.Fatal(err)
	}
	want := []vaulttest.Request{{"GET", "secret/data/a"}, {"PUT", "secret/data/a"}, {"LIST", "secret/metadata/"}, {"GET", "secret/data/a"}, {"DELETE", "secret/data/a"}}
	if log := p.Log(); !slices.Equal(log, want) || !slices.Equal(log[before:], want[4:]) {
		t.Fatalf("Log = %v, want %v", log, want)
	}
	if s := fmt.Sprint(want[1]); s != "PUT secret/data/a" {
		t.Errorf("Request prints as %q", s)
	}
}

func TestRequestProxyVerdicts(t *testing.T) {
	b, p := newRequestProxy(t)
	verdict := map[string]vaulttest.Verdict{"drop": vaulttest.Drop, "lose": vaulttest.LoseAnswer, "stall": vaulttest.Stall}
	p.Intercept(func(r *http.Request) vaulttest.Verdict { return verdict[strings.TrimPrefix(r.URL.Path, "/v1/")] })

	// Forward (the zero Verdict, for any other path): the answer comes back.
	if got, err := send(context.Background(), p, "PUT", "other", "v"); err != nil || got != "PUT /v1/other v" {
		t.Fatalf("forwarded: %q, %v", got, err)
	}
	if n := b.served.Load(); n != 1 {
		t.Fatalf("backend served %d, want 1", n)
	}

	// Drop: the connection closes without an answer; the backend never
	// sees the request.
	if _, err := send(context.Background(), p, "PUT", "drop", "v"); err == nil || !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("dropped: %v, want the connection closed", err)
	}
	if n := b.served.Load(); n != 1 {
		t.Fatalf("a dropped request reached the backend (%d served)", n)
	}

	// LoseAnswer: the backend serves the request; the client, without an
	// answer, gives up.
	if _, err := send(within(t, 300*time.Millisecond), p, "PUT", "lose", "v"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("answer lost: %v, want the client's timeout", err)
	}
	if n := b.served.Load(); n != 2 {
		t.Fatalf("backend served %d, want 2: a request whose answer is lost still reaches it", n)
	}

	// Stall: no answer, and the backend never sees the request.
	if _, err := send(within(t, 300*time.Millisecond), p, "PUT", "stall", "v"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled: %v, want the client's timeout", err)
	}
	if n := b.served.Load(); n != 2 {
		t.Fatalf("a stalled request reached the backend (%d served)", n)
	}

	// Every request is logged, whatever became of it; nil forwards all.
	if want := []string{"other", "drop", "lose", "stall"}; !slices.EqualFunc(p.Log(), want, func(r vaulttest.Request, path string) bool { return r.Path == path }) {
		t.Fatalf("Log = %v, want the paths %v", p.Log(), want)
	}
	p.Intercept(nil)
	if _, err := send(context.Background(), p, "PUT", "stall", "v"); err != nil {
		t.Fatalf("after Intercept(nil): %v", err)
	}
}

// A held request whose client gave up ends at the proxy: released, it is
// not passed on. Close ends stalled requests and returns.
func TestRequestProxyClientGivesUp(t *testing.T) {
	b := newBackend(t)
	p, err := vaulttest.NewRequestProxy(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	var decided atomic.Int64
	p.Intercept(func(r *http.Request) vaulttest.Verdict {
		decided.Add(1)
		if r.URL.Path == "/v1/stalled" {
			return vaulttest.Stall
		}
		return vaulttest.Forward
	})
	h := p.HoldNext("held", 1)
	for _, path := range []string{"held", "stalled"} {
		if _, err := send(within(t, 200*time.Millisecond), p, "PUT", path, "body"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want the client's timeout", path, err)
		}
	}
	h.Wait(t)
	time.Sleep(300 * time.Millisecond) // for the proxy to see the client go
	h.Release()
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: a stalled request outlived the proxy")
	}
	if n, m := decided.Load(), b.served.Load(); n != 1 || m != 0 {
		t.Fatalf("%d requests went on past the hold, %d reached the backend; want 1 (the stalled one) and 0", n, m)
	}
	p.Close() // a second Close does nothing
	if _, err := send(context.Background(), p, "GET", "x", ""); err == nil {
		t.Fatal("a closed proxy answered")
	}
}

func TestRequestProxyOnAnswered(t *testing.T) {
	_, p := newRequestProxy(t)
	answered := make(chan string, 10)
	p.OnAnswered(func(r *http.Request) { answered <- r.URL.Path })
	p.Intercept(func(r *http.Request) vaulttest.Verdict {
		if r.URL.Path == "/v1/dropped" {
			return vaulttest.Drop
		}
		return vaulttest.Forward
	})
	next := func() string {
		t.Helper()
		select {
		case path := <-answered:
			return path
		case <-time.After(10 * time.Second):
			t.Fatal("OnAnswered was not called")
			return ""
		}
	}
	ctx := context.Background()
	if _, err := send(ctx, p, "PUT", "first", "v"); err != nil {
		t.Fatal(err)
	}
	if path := next(); path != "/v1/first" {
		t.Fatalf("OnAnswered got %s", path)
	}
	if _, err := send(ctx, p, "PUT", "dropped", "v"); err == nil {
		t.Fatal("a dropped request was answered")
	}
	if _, err := send(ctx, p, "PUT", "second", "v"); err != nil {
		t.Fatal(err)
	}
	if path := next(); path != "/v1/second" {
		t.Fatalf("OnAnswered got %s, want /v1/second: it ran for a request never answered", path)
	}
	p.OnAnswered(nil)
	if _, err := send(ctx, p, "PUT", "third", "v"); err != nil {
		t.Fatal(err)
	}
	if p.Total() != 4 || len(answered) != 0 {
		t.Fatalf("Total = %d, %d more answered, want 4 and none after OnAnswered(nil)", p.Total(), len(answered))
	}
}

func TestRequestProxyHoldNext(t *testing.T) {
	b, p := newRequestProxy(t)
	h := p.HoldNext("secret/data/x", 3)
	errs := make(chan error, 4)
	for range 3 {
		go func() {
			_, err := send(context.Background(), p, "GET", "secret/data/x", "")
			errs <- err
		}()
	}
	h.Wait(t)
	// Other paths pass; the three held requests have not reached the
	// backend, and the next one to their path is not held.
	if _, err := send(context.Background(), p, "GET", "secret/data/y", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := send(context.Background(), p, "GET", "secret/data/x", ""); err != nil {
		t.Fatal(err)
	}
	if n := b.served.Load(); n != 2 {
		t.Fatalf("backend served %d while three requests were held, want 2", n)
	}
	select {
	case err := <-errs:
		t.Fatalf("a held request ended before Release: %v", err)
	default:
	}
	h.Release()
	h.Release()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := b.served.Load(); n != 5 {
		t.Fatalf("backend served %d, want 5", n)
	}
	if n := p.Count("secret/data/x"); n != 4 {
		t.Fatalf("Count = %d, want 4", n)
	}
	select {
	case <-p.HoldNext("z", 0).Arrived():
	default:
		t.Fatal("a hold for no request has not arrived")
	}
}

// Two holds on one path take the requests in turn.
func TestRequestProxyHoldsInTurn(t *testing.T) {
	_, p := newRequestProxy(t)
	first, second := p.HoldNext("p", 1), p.HoldNext("p", 1)
	done := make(chan string, 2)
	go func() { _, _ = send(context.Background(), p, "PUT", "p", "1"); done <- "1" }()
	first.Wait(t)
	go func() { _, _ = send(context.Background(), p, "PUT", "p", "2"); done <- "2" }()
	second.Wait(t)
	second.Release()
	if got := <-done; got != "2" {
		t.Fatalf("request %s ended first, want 2 (released first)", got)
	}
	first.Release()
	<-done
}

// Many clients at once, while the hooks change: every request is counted
// once (run with -race).
func TestRequestProxyConcurrent(t *testing.T) {
	b, p := newRequestProxy(t)
	const clients, each = 16, 20
	var wg gosync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := send(context.Background(), p, "PUT", fmt.Sprint("c", c), fmt.Sprint(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 50 {
		p.Intercept(func(*http.Request) vaulttest.Verdict { return vaulttest.Forward })
		p.OnAnswered(func(*http.Request) {})
		p.Intercept(nil)
		_ = p.Log()
	}
	wg.Wait()
	if n := p.Total(); n != clients*each || b.served.Load() != clients*each {
		t.Fatalf("Total = %d, served %d, want %d", n, b.served.Load(), clients*each)
	}
	for c := range clients {
		if n := p.Count(fmt.Sprint("c", c)); n != each {
			t.Fatalf("Count(c%d) = %d, want %d", c, n, each)
		}
	}
}

// Server.RequestProxy closes the proxy when the test ends.
func TestServerRequestProxyClosedAtCleanup(t *testing.T) {
	b := newBackend(t)
	var p *vaulttest.RequestProxy
	t.Run("inner", func(t *testing.T) {
		p = (&vaulttest.Server{Addr: b.URL}).RequestProxy(t)
		p.Intercept(func(*http.Request) vaulttest.Verdict { return vaulttest.Stall })
		go func() { _, _ = send(context.Background(), p, "GET", "x", "") }()
		for p.Total() == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	if _, err := send(context.Background(), p, "GET", "x", ""); err == nil {
		t.Fatal("the proxy still answers after its test ended")
	}
	if _, err := vaulttest.NewRequestProxy("127.0.0.1:8200"); err == nil {
		t.Fatal("NewRequestProxy took a target that is not a URL")
	}
}
