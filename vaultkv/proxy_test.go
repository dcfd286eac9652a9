package vaultkv_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/connection"
)

// verdict is what a proxy does with a request.
type verdict int

const (
	forward verdict = iota // pass it to Vault
	drop                   // close the connection without an answer
	hold                   // pass it to Vault, then keep the answer until the client gives up
	freeze                 // keep the request, without passing it on, until the client gives up
)

// proxy is a loopback proxy to Vault whose hook decides the fate of each
// request, to play faults (a dead link, a frozen server) at chosen points.
type proxy struct {
	srv *httptest.Server

	mu sync_
}

type sync_ struct {
	gosync.Mutex
	hook  func(r *http.Request) verdict
	after func(r *http.Request)
	seen  []string // "METHOD /v1/path", in order
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		hook, after := p.mu.hook, p.mu.after
		p.mu.seen = append(p.mu.seen, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		v := forward
		if hook != nil {
			v = hook(r)
		}
		switch v {
		case drop:
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
			http.Error(w, "dropped", http.StatusBadGateway)
			return
		case freeze:
			<-r.Context().Done()
			return
		case hold:
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
			<-r.Context().Done()
			return
		}
		rp.ServeHTTP(w, r)
		if after != nil {
			after(r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// set replaces the hooks: hook decides each request's fate, after runs
// once a forwarded request has been answered.
func (p *proxy) set(hook func(r *http.Request) verdict, after func(r *http.Request)) {
	p.mu.Lock()
	p.mu.hook, p.mu.after = hook, after
	p.mu.Unlock()
}

// count returns how many requests so far match method (or any, when "")
// and contain part in their path.
func (p *proxy) count(method, part string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.mu.seen {
		m, path, _ := strings.Cut(s, " ")
		if (method == "" || m == method) && strings.Contains(path, part) {
			n++
		}
	}
	return n
}

// seenSince returns the requests seen after the first n.
func (p *proxy) seenSince(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.mu.seen[n:]...)
}

// conn connects through the proxy with token, retries and timeout.
func (p *proxy) conn(t testing.TB, token string, retries int, timeout time.Duration) *connection.Conn {
	t.Helper()
	c, err := connection.New(context.Background(), connection.Config{
		Address: p.srv.URL, MaxRetries: retries, Timeout: timeout,
		Token: &connection.Token{Token: connection.Credential{Value: token}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// isDataWrite reports a write of a KV v2 secret's data under mount.
func isDataWrite(r *http.Request, mount string) bool {
	return (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.HasPrefix(r.URL.Path, "/v1/"+mount+"/data/")
}
