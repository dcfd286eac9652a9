package vaulttest

import (
	"errors"
	"fmt"
	"io"
	"net"
	gosync "sync"
	"time"
)

// Proxy is a loopback TCP proxy in front of a server. A test points a
// client at the proxy's address and then makes the server look frozen,
// down or moved, without touching the server itself:
//
//   - Freeze: a server stopped as with SIGSTOP. Open connections stay
//     open but no byte passes either way; new connections are accepted
//     and get no answer. Bytes that arrive meanwhile are held, and Thaw
//     passes them on, so a request that the client gave up on may still
//     reach the server later, as it would after SIGCONT.
//   - FreezeResponses: requests still reach the server, which applies
//     them, but its answers are held until Thaw: a write whose outcome the
//     client cannot know, as when a network loses the answer.
//   - Cut: a server that went down. Every open connection is closed and
//     new ones are reset as soon as they are accepted. Restore ends it.
//   - Retarget: the server moved (for example a container that came back
//     on another port); new connections go to the new address.
//
// Why a proxy and not docker pause: docker pause freezes the container's
// processes through the cgroup freezer, which is the real thing but
// freezes the server for every client, needs a Docker daemon that
// supports it (cgroup v1 freezer or cgroup v2, not every rootless setup)
// and cannot tell one client's connections from another's. The proxy
// works wherever loopback TCP does and freezes only the connections that
// go through it, so a test can still look behind it (with a client that
// dials the server directly) while the code under test sees a frozen
// server.
//
// A Proxy knows nothing of HTTP requests; RequestProxy sees each one, to
// count them or to decide the fate of chosen ones.
//
// A Proxy is safe for concurrent use.
type Proxy struct {
	ln net.Listener

	mu      gosync.Mutex
	target  string
	frozen  chan struct{} // non-nil while frozen; closed by Thaw
	onlyOut bool          // frozen for answers only (FreezeResponses)
	cut     bool
	closed  bool
	links   map[*link]struct{}
	held    int // connections and chunks waiting for Thaw
	passing int // chunks being written, and connections being dialed
	stats   ProxyStats

	wg gosync.WaitGroup
}

// ProxyStats counts what a Proxy has seen.
type ProxyStats struct {
	// Accepted counts the connections accepted, including those reset
	// while cut.
	Accepted int
	// Reset counts the connections reset at once because the proxy was
	// cut, or because the target could not be dialed.
	Reset int
}

// link is one client connection and, once dialed, its server connection.
type link struct {
	client net.Conn
	done   chan struct{}

	mu     gosync.Mutex
	server net.Conn
	closed bool
}

func (l *link) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	close(l.done)
	_ = l.client.Close()
	if l.server != nil {
		_ = l.server.Close()
	}
}

// attach sets the server connection; it reports false (and closes s) when
// the link was closed meanwhile.
func (l *link) attach(s net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = s.Close()
		return false
	}
	l.server = s
	return true
}

func (l *link) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// NewProxy starts a proxy on a fresh loopback port that forwards to target
// ("host:port"). Close it when done.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("vaulttest: proxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's address, "127.0.0.1:port". It stays the same
// for the life of the proxy, whatever the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns "http://" followed by Addr.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Target returns the address new connections are forwarded to.
func (p *Proxy) Target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// Stats returns what the proxy has seen so far.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Freeze stops every byte from passing, as if the server had been stopped
// with SIGSTOP: open connections stay open, new connections are accepted
// and wait, and what clients send is held until Thaw. Freezing a frozen
// proxy does nothing.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if p.frozen == nil {
		p.frozen = make(chan struct{})
	}
	p.onlyOut = false
}

// FreezeResponses holds every byte the server sends until Thaw, while
// requests still reach it: the server applies a write, and its client,
// which never gets the answer, times out. Calling Freeze as well freezes
// both ways.
func (p *Proxy) FreezeResponses() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.frozen != nil {
		return
	}
	p.frozen = make(chan struct{})
	p.onlyOut = true
}

// Thaw lets bytes pass again, and returns once what the proxy held while
// frozen has been passed on (or after 10 seconds, if a side does not read
// it). Connections that the clients closed meanwhile still deliver what
// they sent before closing, as a server resumed with SIGCONT would read it.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
	p.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		busy := p.held + p.passing
		p.mu.Unlock()
		if busy == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Frozen reports whether the proxy is frozen (by Freeze or
// FreezeResponses).
func (p *Proxy) Frozen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frozen != nil
}

// Cut makes the server look down: it closes every open connection and
// resets new ones as soon as they are accepted, until Restore. Data held
// by a freeze is dropped.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	links := p.takeLinks()
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
}

// Restore ends a Cut: new connections are forwarded again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Retarget sends new connections to target ("host:port"), for example
// after a container restarted on another port. Open connections are left
// as they are.
func (p *Proxy) Retarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// Close stops the proxy: it stops accepting, closes every connection and
// waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
	links := p.takeLinks()
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
	return err
}

// takeLinks empties the set of open links and returns them. p.mu is held.
func (p *Proxy) takeLinks() []*link {
	out := make([]*link, 0, len(p.links))
	for l := range p.links {
		out = append(out, l)
	}
	clear(p.links)
	return out
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		p.stats.Accepted++
		switch {
		case p.closed:
			p.mu.Unlock()
			_ = c.Close()
			return
		case p.cut:
			p.stats.Reset++
			p.mu.Unlock()
			reset(c)
			continue
		}
		l := &link{client: c, done: make(chan struct{})}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(l)
	}
}

// reset closes c with an RST rather than a FIN, as a host with no listener
// would answer.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) drop(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
	l.close()
}

// serve forwards one client connection.
func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer p.drop(l)
	// A frozen server accepts (the kernel does) but does not answer.
	if !p.wait(l, false) {
		return
	}
	target := p.Target()
	s, err := net.DialTimeout("tcp", target, 5*time.Second)
	p.done()
	if err != nil {
		p.mu.Lock()
		p.stats.Reset++
		p.mu.Unlock()
		reset(l.client)
		return
	}
	if !l.attach(s) {
		return
	}
	var wg gosync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(l, s, l.client, false) }()
	go func() { defer wg.Done(); p.pipe(l, l.client, s, true) }()
	wg.Wait()
}

// wait blocks while the proxy is frozen for the direction (toClient: from
// the server to the client). It returns false when the link or the proxy
// was closed meanwhile; when it returns true the caller has been counted as
// passing and must call done.
func (p *Proxy) wait(l *link, toClient bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.closed || l.isClosed() {
			return false
		}
		fr := p.frozen
		if fr == nil || (p.onlyOut && !toClient) {
			p.passing++
			return true
		}
		p.held++
		p.mu.Unlock()
		select {
		case <-fr:
		case <-l.done:
		}
		p.mu.Lock()
		p.held--
	}
}

func (p *Proxy) done() {
	p.mu.Lock()
	p.passing--
	p.mu.Unlock()
}

// pipe copies src to dst, holding each chunk while the proxy is frozen.
// An end of file from src is passed on as a half close, so that a client
// that sent a request and closed its side is seen by the server exactly
// so.
func (p *Proxy) pipe(l *link, dst, src net.Conn, toClient bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait(l, toClient) {
				return
			}
			_, werr := dst.Write(buf[:n])
			p.done()
			if werr != nil {
				l.close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			l.close()
			return
		}
	}
}
