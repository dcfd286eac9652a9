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
// A Conn is safe for concurrent use.
type Conn struct {
	cfg    Config
	name   string
	log    *slog.Logger
	client *api.Client // the token is set on it after each login
	login  *api.Client // token-less clone for logins and unwrapping
	hc     *http.Client

	mu    gosync.Mutex
	token string
	// reloginAt is when to log in again, a margin before the token
	// expires; zero when its expiry is unknown.
	reloginAt time.Time
	owned     bool   // the token came from a login and is revoked on Close
	stop      func() // stops the renewal of the current token
	logins    int
	closed    bool

	// A wrapping token unwraps once: the secret_id it held, and the token.
	wrapToken, unwrapped string
}

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
	// for reuse instead of opening new ones each round.
	tr.MaxIdleConnsPerHost = 64
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
		MinRetryWait: 250 * time.Millisecond,
		MaxRetryWait: 5 * time.Second,
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
	if cfg.Namespace != "" {
		login.SetNamespace(cfg.Namespace)
	}

	c := &Conn{cfg: cfg, name: opts.Name, log: opts.Logger, client: client, login: login, hc: hc}
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

// checkRetry retries 429 and 5xx answers (except 501), and requests that
// got no answer, unless the context ended.
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
	if resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented) {
		return true, nil
	}
	return false, nil
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
// the connection has none or its token is about to expire. The client is
// shared: do not change its token or namespace. Prefer Do, which also
// recovers from a token revoked behind the connection's back.
func (c *Conn) Client(ctx context.Context) (*api.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ensure(ctx, false); err != nil {
		return nil, err
	}
	return c.client, nil
}

// ensure makes sure c.token is usable; with force it logs in again. c.mu is held.
func (c *Conn) ensure(ctx context.Context, force bool) error {
	if c.closed {
		return ErrClosed
	}
	if !force && c.token != "" && (c.reloginAt.IsZero() || time.Now().Before(c.reloginAt)) {
		return nil
	}
	if c.cfg.Token != nil {
		tok, err := c.cfg.Token.Token.read()
		if err != nil {
			return &Error{Op: "read token", Err: ErrInvalidCredentials, detail: err.Error()}
		}
		c.token = tok
		c.client.SetToken(tok)
		return nil
	}
	return c.appRoleLogin(ctx)
}

func (c *Conn) appRoleLogin(ctx context.Context) error {
	ar := c.cfg.AppRole
	secretID, err := ar.SecretID.read()
	if err != nil {
		return &Error{Op: "login", Path: "auth/" + ar.mount() + "/login", Err: ErrInvalidCredentials, detail: err.Error()}
	}
	if ar.Wrapped {
		if secretID, err = c.unwrap(ctx, secretID); err != nil {
			return err
		}
	}
	opts := []approle.LoginOption{approle.WithMountPath(ar.mount())}
	method, err := approle.NewAppRoleAuth(ar.RoleID, &approle.SecretID{FromString: secretID}, opts...)
	if err != nil {
		return &ConfigError{Field: "AppRole", Reason: err.Error()}
	}
	secret, err := method.Login(ctx, c.login)
	if err != nil {
		return Classify(err, "login", "auth/"+ar.mount()+"/login", "update")
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return &Error{Op: "login", Path: "auth/" + ar.mount() + "/login", Err: errors.New("no token in the login response")}
	}
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	old, wasOwned := c.token, c.owned
	c.token, c.owned = secret.Auth.ClientToken, true
	c.client.SetToken(c.token)
	c.logins++
	c.reloginAt = time.Time{}
	if ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second; ttl > 0 {
		c.reloginAt = reloginTime(ttl)
	}
	c.log.DebugContext(ctx, "vault: logged in", "connection", c.name, "method", "approle", "ttl", secret.Auth.LeaseDuration, "renewable", secret.Auth.Renewable)
	if wasOwned && old != "" {
		go c.revoke(old)
	}
	if secret.Auth.Renewable {
		c.startRenewal(secret)
	}
	return nil
}

// unwrap returns the secret_id that the wrapping token holds, unwrapping it
// only the first time the connection sees that token. c.mu is held.
func (c *Conn) unwrap(ctx context.Context, token string) (string, error) {
	if token == c.wrapToken && c.unwrapped != "" {
		return c.unwrapped, nil
	}
	const path = "sys/wrapping/unwrap"
	secret, err := c.login.Logical().UnwrapWithContext(ctx, token)
	if err != nil {
		err = Classify(err, "unwrap", path, "update")
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

// startRenewal keeps the current token alive with a LifetimeWatcher. When
// the watcher gives up (max TTL reached, or renewal refused), the token is
// marked expired so that the next request logs in again. c.mu is held.
func (c *Conn) startRenewal(secret *api.Secret) {
	cl, err := c.client.Clone()
	if err != nil {
		return
	}
	cl.SetToken(secret.Auth.ClientToken)
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

// Do runs fn with the shared client holding a valid token. If fn fails with
// 403 and the connection's own token turns out to be invalid (expired or
// revoked), it logs in once more and runs fn once more; it never loops. The
// error is classified for op, path and capability (see Classify).
func (c *Conn) Do(ctx context.Context, op, path, capability string, fn func(*api.Client) error) error {
	cl, err := c.Client(ctx)
	if err != nil {
		return err
	}
	err = fn(cl)
	if err == nil || Status(err) != http.StatusForbidden {
		return Classify(err, op, path, capability)
	}
	// 403: a missing capability, or a token that no longer works?
	if c.tokenValid(ctx) {
		return Classify(err, op, path, capability)
	}
	c.mu.Lock()
	err2 := c.ensure(ctx, true)
	c.mu.Unlock()
	if err2 != nil {
		return err2
	}
	return Classify(fn(cl), op, path, capability)
}

// tokenValid asks Vault whether the current token still works.
func (c *Conn) tokenValid(ctx context.Context) bool {
	_, err := c.client.Auth().Token().LookupSelfWithContext(ctx)
	return err == nil || Status(err) != http.StatusForbidden
}

// Close stops renewal, revokes the token the connection obtained by
// logging in (a user-managed token is left alone) and closes the
// connection's idle network connections. Further use returns ErrClosed.
func (c *Conn) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	var err error
	if c.owned && c.token != "" {
		cl, cerr := c.client.Clone()
		if cerr == nil {
			cl.SetToken(c.token)
			_, rerr := cl.Logical().WriteWithContext(ctx, "auth/token/revoke-self", nil)
			err = Classify(rerr, "revoke", "auth/token/revoke-self", "update")
		}
	}
	c.token = ""
	c.client.ClearToken()
	// Idle connections would otherwise stay open until they time out.
	c.hc.CloseIdleConnections()
	return err
}

// revoke revokes a token the connection no longer uses, in the background.
func (c *Conn) revoke(token string) {
	cl, err := c.client.Clone()
	if err != nil {
		return
	}
	cl.SetToken(token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = cl.Logical().WriteWithContext(ctx, "auth/token/revoke-self", nil)
}
