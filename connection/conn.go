package connection

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	cleanhttp "github.com/hashicorp/go-cleanhttp"
	retryablehttp "github.com/hashicorp/go-retryablehttp"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"

	"github.com/secretsync/secretsync/audit"
)

var (
	errContextCanceled = context.Canceled
	errDeadline        = context.DeadlineExceeded
)

// EventPrefix is prepended to the audit event types a connection emits, and
// is the prefix to give audit.Prefix for a sync to Vault, so that events read
// HCV_CONNECTION_CREATED and HCV_SECRET_SYNCED.
const EventPrefix = "HCV_"

// Options are the optional parts of a connection.
type Options struct {
	// Name identifies the connection in audit events and logs.
	Name string
	// Auditor receives HCV_CONNECTION_CREATED. Nil discards.
	Auditor audit.Auditor
	// Logger receives value-free debug records (logins, renewals). Nil
	// discards.
	Logger *slog.Logger
}

// Conn is a connection to one Vault server. It obtains a token when one is
// first needed, renews it while it is renewable, logs in again when it
// expires or is revoked, and revokes it on Close. It never holds a root
// token of its own making.
//
// A Conn is safe for concurrent use. Logins and token checks are shared: at
// most one is under way at a time, and every request that needs its outcome
// waits for it instead of starting its own.
type Conn struct {
	cfg     Config
	name    string
	log     *slog.Logger
	base    *api.Client // no token: each token gets its own clone of it
	login   *api.Client // no token: for logins and unwrapping
	timeout time.Duration
	hc      *http.Client // shared by every clone: Close closes its idle connections
	// slots holds a value for each request of Do in flight: at most
	// maxInFlight, so that the requests beyond wait here, in order, and
	// not in the HTTP transport, whose queue of waiting requests keeps
	// every one that passed through it since its last surge (thousands, at
	// thousands of syncs) until its next.
	slots chan struct{}

	mu gosync.Mutex
	// token is the token in use ("" when there is none) and client a clone
	// of base that holds it and is never given another: a request sent
	// with client used token, whatever the connection did since.
	token  string
	client *api.Client
	// reloginAt is when to log in again, a margin before the token
	// expires; zero when its expiry is unknown.
	reloginAt time.Time
	owned     bool   // the token came from a login and is revoked on Close
	stop      func() // stops the renewal of the current token
	logins    int
	closed    bool
	// flight is the login or token check under way, nil when none is.
	flight *flight
	// dead is the last token found revoked or expired; deadErr is why no
	// token replaced it (nil once one did, or when nobody tried yet).
	dead    string
	deadErr error

	// A wrapping token unwraps once: the secret_id it held, and the token.
	// Only the goroutine running a flight touches them.
	wrapToken, unwrapped string
}

// flight is a login, or the check of a token that a request found refused
// (and the login that replaces it when it is dead). Its fields other than
// done are written before done is closed and read after.
type flight struct {
	failed string // the token whose 403 started the check; "" for a plain login
	done   chan struct{}
	valid  bool  // the checked token still works: its 403 was a policy's answer
	err    error // why the connection has no usable token after the flight
}

// maxConnsPerHost bounds the TCP connections a Conn keeps open to Vault.
const maxConnsPerHost = 64

// maxInFlight bounds the requests of Do in flight on one Conn: a few per
// TCP connection, so that a request is being prepared or its answer read
// while others use the connections, and at most that many wait in the
// HTTP transport.
const maxInFlight = 4 * maxConnsPerHost

// New validates cfg and builds the connection's client explicitly (no
// VAULT_* environment variable is consulted for its settings, and none that
// the Vault API package reads by itself is kept). It does no I/O besides
// reading TLS files, and emits HCV_CONNECTION_CREATED.
func New(ctx context.Context, cfg Config, opts *Options) (*Conn, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &Options{}
	}
	hc := cleanhttp.DefaultPooledClient()
	tr := hc.Transport.(*http.Transport)
	tlsCfg, err := buildTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig = tlsCfg
	// Listing and writing run many requests at once; keep their connections
	// for reuse instead of opening new ones each round. Beyond that many,
	// requests wait for a connection instead of opening one each: thousands
	// of syncs sharing a connection would otherwise open and close a TCP
	// connection per request in a burst, until the host ran out of ports.
	tr.MaxIdleConnsPerHost = maxConnsPerHost
	tr.MaxConnsPerHost = maxConnsPerHost
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	retries := cfg.MaxRetries
	switch {
	case retries == 0:
		retries = 4
	case retries < 0:
		retries = 0
	}
	ac := &api.Config{
		Address:      cfg.Address,
		HttpClient:   hc,
		Timeout:      timeout,
		MaxRetries:   retries,
		MinRetryWait: minRetryWait,
		MaxRetryWait: maxRetryWait,
		Backoff:      retryablehttp.DefaultBackoff, // honours Retry-After on 429 and 503
		CheckRetry:   checkRetry,
		CloneHeaders: true, // clones keep the namespace and request headers
	}
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, &ConfigError{Field: "Address", Reason: err.Error()}
	}
	// api.NewClient picks up VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS
	// from the environment; a library must not, so drop them.
	client.ClearToken()
	client.ClearNamespace()
	client.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	login, err := client.Clone()
	if err != nil {
		return nil, err
	}
	login.ClearToken()

	c := &Conn{cfg: cfg, name: opts.Name, log: opts.Logger, base: client, login: login, timeout: timeout, hc: hc,
		slots: make(chan struct{}, maxInFlight)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.Auditor != nil {
		err := opts.Auditor.Audit(ctx, audit.Event{
			Type: audit.Type(EventPrefix + string(audit.ConnectionCreated)), Time: time.Now(), Outcome: audit.Success,
			Attrs: map[string]string{"connection": c.name, "address": cfg.Address, "namespace": cfg.Namespace, "auth": cfg.Method()},
		})
		if err != nil {
			return nil, fmt.Errorf("vault: audit connection created: %w", err)
		}
	}
	return c, nil
}

// The retry backoff: exponential from minRetryWait to maxRetryWait, or the
// server's Retry-After when it gives one that is no longer than
// maxRetryWait.
const (
	minRetryWait = 250 * time.Millisecond
	maxRetryWait = 5 * time.Second
)

// checkRetry retries 429 and 5xx answers (except 501), and requests that
// got no answer, unless the context ended. A 429 or 503 whose Retry-After
// asks for a longer wait than maxRetryWait, or one past the request's
// deadline, is not retried: its answer is returned at once, so that the
// caller hears "rate limited" (or the 503) instead of waiting for a timeout.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		if isTLS(err) {
			return false, err
		}
		return true, nil
	}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if wait, ok := retryAfter(resp.Header, time.Now()); ok {
			if dl, has := ctx.Deadline(); wait > maxRetryWait || (has && time.Until(dl) < wait) {
				return false, nil
			}
		}
		return true, nil
	case code >= 500 && code != http.StatusNotImplemented:
		return true, nil
	}
	return false, nil
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// buildTLS builds the TLS settings from t, reading the files it names.
// Verification stays on unless InsecureSkipVerify is set.
func buildTLS(t TLS) (*tls.Config, error) {
	bad := func(reason string, err error) (*tls.Config, error) {
		return nil, &ConfigError{Field: "TLS", Reason: reason, Err: err}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CACert != "" || t.CAPath != "" {
		pool := x509.NewCertPool()
		files := []string{}
		if t.CACert != "" {
			files = append(files, t.CACert)
		}
		if t.CAPath != "" {
			entries, err := os.ReadDir(t.CAPath)
			if err != nil {
				return bad("cannot read CAPath", err)
			}
			for _, e := range entries {
				if !e.IsDir() {
					files = append(files, filepath.Join(t.CAPath, e.Name()))
				}
			}
		}
		n := 0
		for _, f := range files {
			pem, err := os.ReadFile(f)
			if err != nil {
				return bad("cannot read CA certificate", err)
			}
			if pool.AppendCertsFromPEM(pem) {
				n++
			}
		}
		if n == 0 {
			return bad(fmt.Sprintf("no PEM certificate found in %q %q", t.CACert, t.CAPath), nil)
		}
		cfg.RootCAs = pool
	}
	if t.ClientCert != "" {
		pair, err := tls.LoadX509KeyPair(t.ClientCert, t.ClientKey)
		if err != nil {
			return bad("cannot load the client certificate and key", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// String describes the connection with credentials redacted.
func (c *Conn) String() string { return fmt.Sprintf("connection %q to %s", c.name, c.cfg) }

// Config returns the connection's configuration.
func (c *Conn) Config() Config { return c.cfg }

// Logins returns how many times the connection has logged in.
func (c *Conn) Logins() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logins
}

// expiryMargin is how long before a token's known expiry the connection
// logs in again, so that no request races the expiry. Short-lived tokens get
// a quarter of their TTL instead.
const expiryMargin = 2 * time.Second

// reloginTime returns when to log in again for a token that lives ttl
// from now.
func reloginTime(ttl time.Duration) time.Time {
	return time.Now().Add(ttl - min(expiryMargin, ttl/4))
}

// Client returns the Vault client with a valid token, logging in first when
// the connection has none or its token is about to expire. The client keeps
// that token (a new token comes with a new client; Close clears it): do not
// change its token or namespace. Prefer Do, which also recovers from a token
// revoked behind the connection's back.
func (c *Conn) Client(ctx context.Context) (*api.Client, error) {
	cl, _, err := c.current(ctx)
	if err != nil {
		return nil, c.classify(ctx, err, "", "", "")
	}
	return cl, nil
}

// Do runs fn with a client holding a valid token, and classifies its error
// for op, path and capability (see Classify; a context error is returned as
// it is only when ctx has ended). At most 256 calls of fn run at once on
// one connection (four for each TCP connection it keeps); the others wait
// their turn, in order, until ctx ends. fn must not call Do itself.
//
// When fn fails with 403, Do asks Vault whether the token fn used still
// works. If it does, the 403 was the policy's answer: the error wraps
// ErrPermissionDenied and says which capabilities the token has on path. If
// it does not (revoked or expired), the connection obtains a new token, and
// Do runs fn once more with it; it never loops. However many requests get
// 403 with one token at once, that token is checked once and replaced by at
// most one login, which they all share; a request whose token was already
// replaced just runs again with the new one. A token given by the user
// (Config.Token) cannot be replaced unless its Credential now yields
// another: the error then wraps ErrTokenInvalid. A failed login is
// returned as it is (ErrInvalidCredentials, ErrUnreachable, ...), saying
// that the token was revoked or expired; the next call tries again.
func (c *Conn) Do(ctx context.Context, op, path, capability string, fn func(*api.Client) error) error {
	cl, token, err := c.current(ctx)
	if err != nil {
		return c.classify(ctx, err, op, path, capability)
	}
	err = c.send(ctx, cl, fn)
	if err == nil {
		return nil
	}
	if Status(err) != http.StatusForbidden || isContext(err) {
		return c.classify(ctx, err, op, path, capability)
	}
	retry, valid, err := c.afterForbidden(ctx, cl, token)
	switch {
	case err != nil:
		return c.classify(ctx, err, op, path, capability)
	case valid:
		return c.denied(ctx, cl, op, path, capability)
	}
	err = c.send(ctx, retry, fn)
	if Status(err) == http.StatusForbidden && !isContext(err) {
		return c.denied(ctx, retry, op, path, capability)
	}
	return c.classify(ctx, err, op, path, capability)
}

// send runs fn with cl once fewer than maxInFlight requests of Do are
// in flight, or returns ctx's error when ctx ends first.
func (c *Conn) send(ctx context.Context, cl *api.Client, fn func(*api.Client) error) error {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.slots }()
	return fn(cl)
}

// current returns the client of a token the connection believes valid and
// that token, logging in (or reading the user's token) first when there is
// none or it is about to expire.
func (c *Conn) current(ctx context.Context) (*api.Client, string, error) {
	c.mu.Lock()
	for {
		if c.closed {
			c.mu.Unlock()
			return nil, "", ErrClosed
		}
		if f := c.flight; f != nil {
			if err := c.await(ctx, f); err != nil {
				c.mu.Unlock()
				return nil, "", err
			}
			if f.err != nil && !tryAgain(ctx, f) {
				c.mu.Unlock()
				return nil, "", f.err
			}
			continue
		}
		if c.token != "" && (c.reloginAt.IsZero() || time.Now().Before(c.reloginAt)) {
			cl, token := c.client, c.token
			c.mu.Unlock()
			return cl, token, nil
		}
		f := c.begin("")
		c.mu.Unlock()
		c.end(f, c.obtain(ctx))
		c.mu.Lock()
		if f.err != nil {
			c.mu.Unlock()
			return nil, "", f.err
		}
	}
}

// afterForbidden decides what a request that got 403 with token (sent by
// cl) does next: run again with the client it returns, or (valid) report
// that the token works and the policy refused, or fail with err. It checks
// token (and replaces it when it is dead) only when nobody has yet: one
// check, and at most one login, per token.
func (c *Conn) afterForbidden(ctx context.Context, cl *api.Client, token string) (retry *api.Client, valid bool, err error) {
	c.mu.Lock()
	for {
		if c.closed {
			c.mu.Unlock()
			return nil, false, ErrClosed
		}
		if f := c.flight; f != nil {
			if err := c.await(ctx, f); err != nil {
				c.mu.Unlock()
				return nil, false, err
			}
			switch {
			case f.err != nil && !tryAgain(ctx, f):
				c.mu.Unlock()
				return nil, false, f.err
			case f.err == nil && f.failed == token && f.valid:
				c.mu.Unlock()
				return nil, true, nil
			}
			continue
		}
		if c.token != token {
			switch {
			case c.token != "":
				// A newer token than the refused one: run again with it.
				retry := c.client
				c.mu.Unlock()
				return retry, false, nil
			case c.deadErr != nil:
				// The refused token is dead and no login could replace it.
				err := c.deadErr
				c.mu.Unlock()
				return nil, false, err
			}
			c.mu.Unlock()
			retry, _, err := c.current(ctx)
			return retry, false, err
		}
		f := c.begin(token)
		c.mu.Unlock()
		c.end(f, c.check(ctx, f, cl))
		c.mu.Lock()
		switch {
		case f.err != nil:
			c.mu.Unlock()
			return nil, false, f.err
		case f.valid:
			c.mu.Unlock()
			return nil, true, nil
		}
	}
}

// begin starts a flight. c.mu is held.
func (c *Conn) begin(failed string) *flight {
	f := &flight{failed: failed, done: make(chan struct{})}
	c.flight = f
	return f
}

// end ends the flight f with err, letting its waiters go on.
func (c *Conn) end(f *flight, err error) {
	c.mu.Lock()
	f.err = err
	c.flight = nil
	close(f.done)
	c.mu.Unlock()
}

// await waits until f ends or ctx does. c.mu is held on entry and on return.
func (c *Conn) await(ctx context.Context, f *flight) error {
	c.mu.Unlock()
	defer c.mu.Lock()
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tryAgain reports whether f failed only because the context of the request
// that ran it ended, while ctx goes on: the waiter then tries on its own.
func tryAgain(ctx context.Context, f *flight) bool {
	return isContext(f.err) && ctx.Err() == nil
}

// check asks Vault whether the token of f, which cl holds, still works, and
// when it does not, obtains a new one. It runs as the flight f.
func (c *Conn) check(ctx context.Context, f *flight, cl *api.Client) error {
	_, err := cl.Auth().Token().LookupSelfWithContext(ctx)
	if err == nil {
		f.valid = true
		return nil
	}
	if Status(err) != http.StatusForbidden || isContext(err) {
		// No telling whether the token works: say why.
		return c.classify(ctx, err, "lookup-self", "auth/token/lookup-self", "read")
	}
	c.log.DebugContext(ctx, "vault: token revoked or expired", "connection", c.name)
	c.mu.Lock()
	if c.token == f.failed {
		// Drop it: nobody uses it again, and Close does not revoke it.
		if c.stop != nil {
			c.stop()
			c.stop = nil
		}
		c.token, c.client, c.owned, c.reloginAt = "", nil, false, time.Time{}
	}
	c.dead = f.failed
	c.mu.Unlock()
	return c.obtain(ctx)
}

// obtain gets the connection a new token: a login with AppRole, or the
// user's token read from its Credential. It runs as a flight.
func (c *Conn) obtain(ctx context.Context) error {
	c.mu.Lock()
	dead := c.dead
	replacing := c.token == "" && dead != ""
	c.mu.Unlock()
	err := c.obtainToken(ctx, dead)
	if err == nil {
		return nil
	}
	var e *Error
	if replacing && errors.As(err, &e) && e.Op != "" {
		e.note = "after the token was revoked or expired"
	}
	c.mu.Lock()
	if c.token == "" {
		// Requests refused with the dead token share this failure; a
		// cancelled login is nobody else's.
		c.deadErr = err
		if isContext(err) {
			c.deadErr = nil
		}
	}
	c.mu.Unlock()
	return err
}

func (c *Conn) obtainToken(ctx context.Context, dead string) error {
	if c.cfg.Token != nil {
		token, err := c.cfg.Token.Token.read()
		if err != nil {
			return &Error{Op: "read token", Err: ErrInvalidCredentials, detail: err.Error()}
		}
		if token == dead {
			return &Error{Status: http.StatusForbidden, Err: ErrTokenInvalid, detail: "a token from Config.Token, which the connection cannot replace"}
		}
		return c.install(ctx, token, nil)
	}
	secret, err := c.appRoleLogin(ctx)
	if err != nil {
		return err
	}
	c.log.DebugContext(ctx, "vault: logged in", "connection", c.name, "method", "approle", "ttl", secret.Auth.LeaseDuration, "renewable", secret.Auth.Renewable)
	return c.install(ctx, secret.Auth.ClientToken, secret)
}

// install makes token the connection's token, with a client of its own. A
// token from a login (secret non-nil) is owned: renewed, and revoked when
// replaced or on Close; a login that ends after Close revokes its token.
func (c *Conn) install(ctx context.Context, token string, secret *api.Secret) error {
	cl, err := c.base.Clone()
	if err != nil {
		return err
	}
	cl.SetToken(token)
	owned := secret != nil
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		if owned {
			_, err := cl.Logical().WriteWithContext(ctx, "auth/token/revoke-self", nil)
			if err != nil {
				c.log.WarnContext(ctx, "vault: cannot revoke the token of a login that ended after Close", "connection", c.name, "error", c.classify(ctx, err, "revoke", "auth/token/revoke-self", "update"))
			}
		}
		return ErrClosed
	}
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	old, oldClient, oldOwned := c.token, c.client, c.owned
	c.token, c.client, c.owned = token, cl, owned
	c.reloginAt = time.Time{}
	c.deadErr = nil
	if owned {
		c.logins++
		if ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second; ttl > 0 {
			c.reloginAt = reloginTime(ttl)
		}
		if secret.Auth.Renewable {
			c.startRenewal(cl, secret)
		}
	}
	c.mu.Unlock()
	if oldOwned && old != "" {
		// Replaced before it expired; requests still using it get 403 and
		// run again with the new token.
		go c.revoke(oldClient)
	}
	return nil
}

// appRoleLogin logs in with AppRole. It runs as a flight.
func (c *Conn) appRoleLogin(ctx context.Context) (*api.Secret, error) {
	ar := c.cfg.AppRole
	path := "auth/" + ar.mount() + "/login"
	secretID, err := ar.SecretID.read()
	if err != nil {
		return nil, &Error{Op: "login", Path: path, Err: ErrInvalidCredentials, detail: err.Error()}
	}
	if ar.Wrapped {
		if secretID, err = c.unwrap(ctx, secretID); err != nil {
			return nil, err
		}
	}
	opts := []approle.LoginOption{approle.WithMountPath(ar.mount())}
	method, err := approle.NewAppRoleAuth(ar.RoleID, &approle.SecretID{FromString: secretID}, opts...)
	if err != nil {
		return nil, &ConfigError{Field: "AppRole", Reason: err.Error()}
	}
	secret, err := method.Login(ctx, c.login)
	if err != nil {
		return nil, c.classify(ctx, err, "login", path, "update")
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return nil, &Error{Op: "login", Path: path, Err: errors.New("no token in the login response")}
	}
	return secret, nil
}

// unwrap returns the secret_id that the wrapping token holds, unwrapping it
// only the first time the connection sees that token. It runs as a flight.
func (c *Conn) unwrap(ctx context.Context, token string) (string, error) {
	if token == c.wrapToken && c.unwrapped != "" {
		return c.unwrapped, nil
	}
	const path = "sys/wrapping/unwrap"
	secret, err := c.login.Logical().UnwrapWithContext(ctx, token)
	if err != nil {
		err = c.classify(ctx, err, "unwrap", path, "update")
		var e *Error
		if errors.As(err, &e) && (e.Status == http.StatusBadRequest || e.Status == http.StatusForbidden) {
			// An unknown, used or expired wrapping token.
			e.Err = ErrInvalidCredentials
		}
		return "", err
	}
	var id string
	if secret != nil {
		id, _ = secret.Data["secret_id"].(string)
	}
	if id == "" {
		return "", &Error{Op: "unwrap", Path: path, Err: ErrInvalidCredentials, detail: "the wrapped response holds no secret_id"}
	}
	c.wrapToken, c.unwrapped = token, id
	return id, nil
}

// startRenewal keeps the token of cl alive with a LifetimeWatcher. When the
// watcher gives up (max TTL reached, or renewal refused), the token is
// marked expired so that the next request logs in again. c.mu is held.
func (c *Conn) startRenewal(cl *api.Client, secret *api.Secret) {
	w, err := cl.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		c.log.Warn("vault: cannot renew token", "connection", c.name, "error", err)
		return
	}
	token := secret.Auth.ClientToken
	done := make(chan struct{})
	var once gosync.Once
	c.stop = func() { once.Do(func() { close(done); w.Stop() }) }
	go w.Start()
	go func() {
		for {
			select {
			case <-done:
				return
			case r := <-w.RenewCh():
				if r != nil && r.Secret != nil && r.Secret.Auth != nil {
					c.mu.Lock()
					if c.token == token {
						c.reloginAt = reloginTime(time.Duration(r.Secret.Auth.LeaseDuration) * time.Second)
					}
					c.mu.Unlock()
					c.log.Debug("vault: token renewed", "connection", c.name, "ttl", r.Secret.Auth.LeaseDuration)
				}
			case err := <-w.DoneCh():
				c.mu.Lock()
				if c.token == token {
					// Let the next request log in again before the token dies.
					c.reloginAt = time.Now()
				}
				c.mu.Unlock()
				c.log.Debug("vault: token renewal ended", "connection", c.name, "error", err)
				return
			}
		}
	}()
}

// denied is the error of a request refused with 403 while its token works:
// ErrPermissionDenied, with the capabilities the token has on path when
// sys/capabilities-self (in Vault's default policy) tells them.
func (c *Conn) denied(ctx context.Context, cl *api.Client, op, path, capability string) error {
	e := &Error{Op: op, Path: path, Capability: capability, Status: http.StatusForbidden, Err: ErrPermissionDenied}
	if path == "" || ctx.Err() != nil {
		return e
	}
	sec, err := cl.Logical().WriteWithContext(ctx, "sys/capabilities-self", map[string]any{"paths": []string{path}})
	if err != nil || sec == nil {
		return e
	}
	raw, ok := sec.Data[path].([]any)
	if !ok {
		return e
	}
	e.Granted = []string{}
	for _, r := range raw {
		if s, ok := r.(string); ok {
			e.Granted = append(e.Granted, s)
		}
	}
	// A write is "create" on a path that does not exist and "update" on one
	// that does: when the token has the one named, the request needed the
	// other.
	has := func(c string) bool { return slices.Contains(e.Granted, c) }
	switch {
	case capability == "update" && has("update") && !has("create"):
		e.Capability = "create"
	case capability == "create" && has("create") && !has("update"):
		e.Capability = "update"
	}
	return e
}

// classify is Classify that tells the connection's own timeout from the
// caller's: a context error is returned as it is only when ctx has ended;
// with ctx still live, it is the client's Timeout, an *Error wrapping
// ErrUnreachable. An *Error without an operation (a failure of the
// connection, not of one request) gets op, path and capability.
func (c *Conn) classify(ctx context.Context, err error, op, path, capability string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Op == "" && op != "" {
			cp := *e
			cp.Op, cp.Path, cp.Capability = op, path, capability
			return &cp
		}
		return err
	}
	if isContext(err) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		detail := fmt.Sprintf("no answer within %v, the connection's Timeout", c.timeout)
		if !errors.Is(err, errDeadline) {
			detail = "request cancelled: " + rootCause(err)
		}
		return &Error{Op: op, Path: path, Capability: capability, Err: ErrUnreachable, detail: detail}
	}
	return Classify(err, op, path, capability)
}

// Close stops renewal and revokes the token the connection obtained by
// logging in (a user-managed token is left alone): the current one, once.
// A login still under way when Close is called revokes its token when it
// ends. It also closes the connection's idle network connections. Further
// use returns ErrClosed.
func (c *Conn) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	token, cl, owned := c.token, c.client, c.owned
	c.token, c.owned = "", false
	c.mu.Unlock()
	var err error
	if owned && token != "" {
		_, rerr := cl.Logical().WriteWithContext(ctx, "auth/token/revoke-self", nil)
		err = c.classify(ctx, rerr, "revoke", "auth/token/revoke-self", "update")
	}
	if cl != nil {
		cl.ClearToken()
	}
	// Idle connections would otherwise stay open until they time out.
	c.hc.CloseIdleConnections()
	return err
}

// revoke revokes the token of cl, which the connection no longer uses, in
// the background.
func (c *Conn) revoke(cl *api.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = cl.Logical().WriteWithContext(ctx, "auth/token/revoke-self", nil)
}
