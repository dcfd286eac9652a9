package vaulttest

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

// RequestProxy is a loopback HTTP reverse proxy in front of Vault that sees
// every request: a test points the code under test at its URL, then looks
// at what that code sent and decides, request by request, what becomes of
// each one.
//
//   - Count, Total and Log tell which requests arrived, in order, whatever
//     became of them.
//   - Intercept sets a function that gives each request a Verdict: pass it
//     on (Forward), close the connection (Drop), pass it on and lose the
//     answer (LoseAnswer), or keep it unanswered (Stall).
//   - OnAnswered sets a function run once each forwarded answer has been
//     passed back, to act at an exact point of a sequence (for example,
//     cancel the caller after its third write).
//   - HoldNext keeps the next n requests to a path until Release, to put
//     them in flight together at a moment the test chooses.
//
// Proxy works a level lower: it passes bytes and knows nothing of
// requests. Use it where the fault acts on connections and bytes (a
// process stopped mid-answer, bytes held and delivered late, a server that
// moved); use a RequestProxy where the test must see requests or pick some.
//
// Server.RequestProxy starts one closed when the test ends;
// NewRequestProxy starts one that the caller closes. A RequestProxy is
// safe for concurrent use; the functions given to Intercept and OnAnswered
// are called from the goroutines that serve requests, concurrently.
type RequestProxy struct {
	srv  *http.Server
	ln   net.Listener
	rp   *httputil.ReverseProxy
	tr   *http.Transport
	stop chan struct{} // closed by Close: held and stalled requests end
	wg   gosync.WaitGroup

	mu        gosync.Mutex
	closed    bool
	log       []Request
	counts    map[string]int
	holds     []*Hold
	intercept func(*http.Request) Verdict
	answered  func(*http.Request)
}

// Verdict is what a RequestProxy does with one request, as decided by the
// function given to Intercept.
type Verdict int

const (
	// Forward passes the request to Vault and its answer back.
	Forward Verdict = iota
	// Drop closes the client's connection without an answer and without
	// passing the request on, as a link that died does.
	Drop
	// LoseAnswer passes the request to Vault, which carries it out, and
	// keeps the answer until the client gives up: the client cannot know
	// whether its write was applied.
	LoseAnswer
	// Stall keeps the request, without passing it on, until the client
	// gives up or the proxy is closed: a server that does not answer.
	Stall
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case Forward:
		return "Forward"
	case Drop:
		return "Drop"
	case LoseAnswer:
		return "LoseAnswer"
	case Stall:
		return "Stall"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Request is one request a RequestProxy received.
type Request struct {
	// Method is the method as sent (Vault's client sends LIST as it is).
	Method string
	// Path is the Vault API path, without the leading "/v1/": for example
	// "auth/approle/login" or "secret/data/app".
	Path string
}

// String returns the method and the path, "PUT secret/data/app".
func (r Request) String() string { return r.Method + " " + r.Path }

// vaultPath returns the Vault API path of r.
func vaultPath(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, "/v1/") }

// RequestProxy starts a RequestProxy in front of the server, closed when
// the test ends. It fails the test if the proxy cannot start.
func (s *Server) RequestProxy(t testing.TB) *RequestProxy {
	t.Helper()
	p, err := NewRequestProxy(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// NewRequestProxy starts a RequestProxy on a fresh loopback port that
// forwards to target, a URL such as "http://127.0.0.1:8200". The caller
// closes it with Close.
func NewRequestProxy(target string) (*RequestProxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("vaulttest: request proxy: target %q is not a URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("vaulttest: request proxy: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	// Clients of the proxy often send many requests at once; keeping as
	// many connections to Vault open spares each request a new one.
	tr.MaxIdleConnsPerHost = 64
	p := &RequestProxy{
		ln:     ln,
		rp:     httputil.NewSingleHostReverseProxy(u),
		tr:     tr,
		stop:   make(chan struct{}),
		counts: map[string]int{},
	}
	p.rp.Transport = tr
	// Without a pool, the reverse proxy allocates a 32 KiB buffer for each
	// answer it copies: at thousands of requests a second that garbage,
	// not the requests, would be most of what a benchmark's process
	// collects.
	p.rp.BufferPool = &bufferPool{}
	p.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		w.WriteHeader(http.StatusBadGateway) // as the default, without logging
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: time.Minute}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// URL returns the proxy's address, "http://127.0.0.1:port", for the
// client's configuration.
func (p *RequestProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Intercept makes f decide the fate of each request from now on; nil
// forwards every request. f runs once per request, after HoldNext has let
// the request go on, and may block: the request waits.
func (p *RequestProxy) Intercept(f func(r *http.Request) Verdict) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.intercept = f
}

// OnAnswered makes f run after each forwarded request's answer has been
// passed back to the client, from now on; nil removes it. Requests
// dropped, stalled or whose answer was lost are not answered.
func (p *RequestProxy) OnAnswered(f func(r *http.Request)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answered = f
}

// Count returns how many requests to path (a Vault API path, as in
// Request) the proxy has received.
func (p *RequestProxy) Count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[path]
}

// Total returns how many requests the proxy has received. Log()[n:] are
// those received after Total returned n.
func (p *RequestProxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.log)
}

// Log returns the requests received so far, in the order they arrived.
func (p *RequestProxy) Log() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.log...)
}

// Hold is a set of requests that a RequestProxy keeps until Release; see
// RequestProxy.HoldNext. Its methods are safe for concurrent use.
type Hold struct {
	path          string
	want, arrived int           // guarded by the proxy's mu
	all           chan struct{} // closed when want requests have arrived
	release       chan struct{}
	once          gosync.Once
}

// HoldNext keeps the next n requests to path (a Vault API path, as in
// Request) when they arrive, until Release. A held request whose client
// gives up ends without an answer; when the proxy is closed, held requests
// end too. Later requests to path go through, or join the next hold on
// path not yet full.
func (p *RequestProxy) HoldNext(path string, n int) *Hold {
	h := &Hold{path: path, want: n, all: make(chan struct{}), release: make(chan struct{})}
	if n <= 0 {
		close(h.all)
		return h
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holds = append(p.holds, h)
	return h
}

// Arrived returns a channel closed once all the requests the hold is for
// have arrived.
func (h *Hold) Arrived() <-chan struct{} { return h.all }

// Wait waits until all the requests the hold is for have arrived, and
// fails the test if they have not within 30 seconds.
func (h *Hold) Wait(t testing.TB) {
	t.Helper()
	select {
	case <-h.all:
	case <-time.After(30 * time.Second):
		t.Fatalf("vaulttest: %d requests to %s did not all arrive within 30s", h.want, h.path)
	}
}

// Release lets the held requests, and those still to come, go on.
// Releasing twice does nothing.
func (h *Hold) Release() { h.once.Do(func() { close(h.release) }) }

// Close stops the proxy: requests held or stalled end without an answer,
// connections are closed, and Close returns once every request has ended.
// Closing twice does nothing.
func (p *RequestProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	p.mu.Unlock()
	_ = p.srv.Close()
	p.wg.Wait()
	p.tr.CloseIdleConnections()
}

// arrive records r and returns the hold it joins, if any. It reports
// false when the proxy is closed; otherwise the caller has been counted in
// p.wg and must call Done.
func (p *RequestProxy) arrive(r *http.Request) (*Hold, bool) {
	path := vaultPath(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false
	}
	p.wg.Add(1)
	p.log = append(p.log, Request{Method: r.Method, Path: path})
	p.counts[path]++
	for i, h := range p.holds {
		if h.path != path {
			continue
		}
		h.arrived++
		if h.arrived == h.want {
			close(h.all)
			p.holds = append(p.holds[:i:i], p.holds[i+1:]...)
		}
		return h, true
	}
	return nil, true
}

// await waits until release is closed, the client gives up or the proxy
// is closed, and reports whether release was.
func (p *RequestProxy) await(r *http.Request, release <-chan struct{}) bool {
	select {
	case <-release:
		return true
	case <-r.Context().Done():
	case <-p.stop:
	}
	return false
}

func (p *RequestProxy) serve(w http.ResponseWriter, r *http.Request) {
	h, ok := p.arrive(r)
	if !ok {
		return
	}
	defer p.wg.Done()
	// Read the body first: the server notices that a client gave up only
	// once the request has been read, and a held or stalled request must
	// end when its client gives up.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away mid-request
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if h != nil && !p.await(r, h.release) {
		return
	}
	p.mu.Lock()
	intercept := p.intercept
	p.mu.Unlock()
	v := Forward
	if intercept != nil {
		v = intercept(r)
	}
	switch v {
	case Forward:
		p.rp.ServeHTTP(w, r)
		if f, ok := w.(http.Flusher); ok {
			f.Flush() // the answer leaves before f runs
		}
		p.mu.Lock()
		answered := p.answered
		p.mu.Unlock()
		if answered != nil {
			answered(r)
		}
	case Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		http.Error(w, "vaulttest: dropped", http.StatusBadGateway)
	case LoseAnswer:
		// Vault carries the request out even if the client gives up
		// meanwhile; the answer goes nowhere.
		p.rp.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.WithoutCancel(r.Context())))
		p.await(r, nil)
	case Stall:
		p.await(r, nil)
	default:
		http.Error(w, "vaulttest: Intercept returned "+v.String(), http.StatusInternalServerError)
	}
}

// bufferPool lends the reverse proxy its copy buffers, for reuse.
type bufferPool struct{ pool gosync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32*1024)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }
