package vaulttest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// newProxy starts a proxy in front of an HTTP server that answers every
// request with the server's name and counts the requests it served.
func newProxy(t *testing.T) (*vaulttest.Proxy, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprint(w, "one")
	}))
	t.Cleanup(backend.Close)
	p, err := vaulttest.NewProxy(backend.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, &served
}

func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestProxyFreezeThaw(t *testing.T) {
	p, served := newProxy(t)
	hc := &http.Client{Transport: &http.Transport{}}
	ctx := context.Background()
	if body, err := get(ctx, hc, p.URL()); err != nil || body != "one" {
		t.Fatalf("before freeze: %q, %v", body, err)
	}

	p.Freeze()
	// A request on the open (kept-alive) connection and one on a new
	// connection both get no answer.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := get(short, hc, p.URL())
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("frozen, kept-alive connection: got %v, want a timeout", err)
	}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	short, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = get(short, fresh, p.URL())
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("frozen, new connection: got %v, want a timeout", err)
	}

	// A request made while frozen finishes once thawed.
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		b, err := get(ctx, fresh, p.URL())
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("a request went through a frozen proxy: %q, %v", r.body, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	p.Thaw()
	r := <-done
	if r.err != nil || r.body != "one" {
		t.Fatalf("after thaw: %q, %v", r.body, r.err)
	}
	if p.Frozen() {
		t.Error("Frozen after Thaw")
	}
	// The first frozen request reached the server after the thaw although
	// its client had given up: as after SIGCONT. So: the first request,
	// the held one on the kept-alive connection, the new-connection one
	// (its client gave up before the proxy dialed, so it may or may not
	// have been delivered), and the last one.
	if n := served.Load(); n < 3 {
		t.Errorf("server saw %d requests, want at least 3 (held requests are delivered on thaw)", n)
	}
}

func TestProxyCutRestore(t *testing.T) {
	p, _ := newProxy(t)
	hc := &http.Client{Transport: &http.Transport{}}
	ctx := context.Background()
	if _, err := get(ctx, hc, p.URL()); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if _, err := get(ctx, hc, p.URL()); err == nil {
		t.Fatal("a request went through a cut proxy")
	}
	var ne *net.OpError
	if _, err := get(ctx, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, p.URL()); !errors.As(err, &ne) && !errors.Is(err, io.EOF) {
		t.Errorf("new connection to a cut proxy: %v, want a network error", err)
	}
	if p.Stats().Reset == 0 {
		t.Error("no connection was reset while cut")
	}
	p.Restore()
	if body, err := get(ctx, hc, p.URL()); err != nil || body != "one" {
		t.Fatalf("after restore: %q, %v", body, err)
	}
}

func TestProxyRetarget(t *testing.T) {
	p, _ := newProxy(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "two") }))
	defer other.Close()
	addr := p.Addr()
	p.Retarget(other.Listener.Addr().String())
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if body, err := get(context.Background(), hc, p.URL()); err != nil || body != "two" {
		t.Fatalf("after retarget: %q, %v", body, err)
	}
	if p.Addr() != addr {
		t.Errorf("address changed from %s to %s", addr, p.Addr())
	}
}

func TestProxyCloseWhileFrozen(t *testing.T) {
	p, _ := newProxy(t)
	p.Freeze()
	errc := make(chan error, 1)
	go func() {
		_, err := get(context.Background(), &http.Client{}, p.URL())
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Error("a request went through a closed proxy")
	}
}

func TestProxyFreezeResponses(t *testing.T) {
	p, served := newProxy(t)
	hc := &http.Client{Transport: &http.Transport{}}
	ctx := context.Background()
	p.FreezeResponses()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := get(short, hc, p.URL())
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("answers frozen: got %v, want a timeout", err)
	}
	// The request reached the server although its answer did not come back.
	if n := served.Load(); n != 1 {
		t.Fatalf("server saw %d requests, want 1", n)
	}
	p.Thaw()
	if body, err := get(ctx, hc, p.URL()); err != nil || body != "one" {
		t.Fatalf("after thaw: %q, %v", body, err)
	}
}
