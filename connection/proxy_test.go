package connection_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	gosync "sync"
	"testing"
	"time"
)

// proxy is a loopback reverse proxy in front of Vault. It counts requests
// by path, to show what a connection sends; it can hold requests until the
// test lets them go, to put them in flight at a chosen moment; and it can
// stall a path, never answering it, as a frozen server does.
type proxy struct {
	URL string

	mu      gosync.Mutex
	n       map[string]int
	holds   map[string]*hold
	stalled map[string]bool
	stop    chan struct{} // closed when the test ends: stalled requests return
}

// hold keeps the next want requests to a path until free is called.
type hold struct {
	want, arrived int
	all           chan struct{} // closed when want requests have arrived
	release       chan struct{}
	once          gosync.Once
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{n: map[string]int{}, holds: map[string]*hold{}, stalled: map[string]bool{}, stop: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/v1/")
		p.mu.Lock()
		p.n[path]++
		h := p.holds[path]
		if h != nil {
			h.arrived++
			if h.arrived == h.want {
				close(h.all)
				delete(p.holds, path)
			}
		}
		stalled := p.stalled[path]
		p.mu.Unlock()
		if h != nil {
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
		}
		if stalled {
			select {
			case <-p.stop:
			case <-r.Context().Done():
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(p.stop) }) // runs first: stalled handlers return
	p.URL = ts.URL
	return p
}

// get returns how many requests to path the proxy has seen.
func (p *proxy) get(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[path]
}

// hold holds the next n requests to path until free.
func (p *proxy) hold(t *testing.T, path string, n int) *hold {
	t.Helper()
	h := &hold{want: n, all: make(chan struct{}), release: make(chan struct{})}
	p.mu.Lock()
	p.holds[path] = h
	p.mu.Unlock()
	t.Cleanup(h.free)
	return h
}

// wait waits until all the requests the hold is for have arrived.
func (h *hold) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.all:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d requests did not all arrive within 30s", h.want)
	}
}

// free lets the held requests go on to Vault.
func (h *hold) free() { h.once.Do(func() { close(h.release) }) }

// stall makes requests to path wait for no answer (on), or go through.
func (p *proxy) stall(path string, on bool) {
	p.mu.Lock()
	p.stalled[path] = on
	p.mu.Unlock()
}

// silentServer listens on loopback, accepts connections and never answers
// on them, as a frozen server does. It returns the address and the number of
// connections accepted so far.
func silentServer(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    gosync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}
