package connection_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// readsInFlight runs n reads of the fixture's secret at once through conn,
// holds them all at the proxy, runs during while they are in flight (all
// sent with the same token), lets them go on, and returns their errors.
func (f *fixture) readsInFlight(t *testing.T, conn *connection.Conn, p *vaulttest.RequestProxy, n int, during func()) []error {
	t.Helper()
	h := p.HoldNext(f.path, n)
	errs := make([]error, n)
	var wg gosync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.read(context.Background(), conn)
		}()
	}
	h.Wait(t)
	during()
	h.Release()
	wg.Wait()
	return errs
}

// Issue #10, defect 7: after a token was revoked, 16 reads in flight caused
// 10 to 16 logins, each revoking the token the others had just got.
func TestRevokedTokenInFlightLeadsToOneLogin(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}})
	p := f.srv.RequestProxy(t)
	cfg := role.Config()
	cfg.Address = p.URL()
	conn := connect(t, cfg, nil)
	if err := f.read(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	const inFlight = 16
	for round := range 4 {
		logins, sent, checks := conn.Logins(), p.Count("auth/approle/login"), p.Count("auth/token/lookup-self")
		token := currentToken(t, conn)
		errs := f.readsInFlight(t, conn, p, inFlight, func() { revoke(t, f.srv, token) })
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: read %d: %v", round, i, err)
			}
		}
		if n := conn.Logins() - logins; n != 1 {
			t.Fatalf("round %d: %d logins after one token was revoked under %d reads in flight, want 1", round, n, inFlight)
		}
		if n := p.Count("auth/approle/login") - sent; n != 1 {
			t.Fatalf("round %d: %d logins sent, want 1", round, n)
		}
		if n := p.Count("auth/token/lookup-self") - checks; n != 1 {
			t.Errorf("round %d: the revoked token was checked %d times, want once", round, n)
		}
		if currentToken(t, conn) == token {
			t.Fatalf("round %d: the connection kept the revoked token", round)
		}
	}
}

// Issue #10, defect 8: a revoked user token was reported as a missing
// capability.
func TestRevokedUserTokenFailsClearly(t *testing.T) {
	f := newFixture(t)
	root := f.srv.Client(t)
	newToken := func() string {
		tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{f.policy}, TTL: "10m"})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Auth.ClientToken
	}
	token := newToken()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	p := f.srv.RequestProxy(t)
	conn := connect(t, connection.Config{Address: p.URL(), Token: &connection.Token{Token: connection.Credential{File: file}}}, nil)
	ctx := context.Background()
	if err := f.read(ctx, conn); err != nil {
		t.Fatal(err)
	}
	errs := f.readsInFlight(t, conn, p, 16, func() { revoke(t, f.srv, token) })
	check := func(err error) {
		t.Helper()
		var e *connection.Error
		switch {
		case !errors.Is(err, connection.ErrTokenInvalid) || !errors.Is(err, connection.ErrInvalidCredentials):
			t.Fatalf("read with a revoked user token: %v, want ErrTokenInvalid (a kind of ErrInvalidCredentials)", err)
		case errors.Is(err, connection.ErrPermissionDenied):
			t.Fatalf("a revoked token reported as a missing capability: %v", err)
		case !errors.As(err, &e) || e.Op != "read" || e.Path != f.path || e.Status != http.StatusForbidden:
			t.Fatalf("error = %#v, want a read *Error on %s with status 403", err, f.path)
		case !strings.Contains(err.Error(), "revoked or expired") || strings.Contains(err.Error(), "capability"):
			t.Fatalf("message %q does not say that the token was revoked or expired", err)
		case strings.Contains(err.Error(), token):
			t.Fatalf("the token is in the error: %v", err)
		}
	}
	for _, err := range errs {
		check(err)
	}
	if n := p.Count("auth/token/lookup-self"); n != 1 {
		t.Errorf("the revoked token was checked %d times, want once", n)
	}
	if conn.Logins() != 0 {
		t.Fatal("a token connection logged in")
	}

	// The dead token is not sent again: the next call fails at once.
	reads := p.Count(f.path)
	check(f.read(ctx, conn))
	if n := p.Count(f.path) - reads; n != 0 {
		t.Errorf("%d requests sent with a token known to be revoked", n)
	}

	// A new token in the file is picked up.
	if err := os.WriteFile(file, []byte(newToken()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.read(ctx, conn); err != nil {
		t.Fatalf("read after the token file was given a new token: %v", err)
	}
}

// Issue #10, defect 8: the token revoked and the new login refused (its
// secret_id used up): every request in flight gets the login's error, which
// says what happened, after one login.
func TestRevokedTokenAndRefusedLogin(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}, SecretIDNumUses: 1})
	p := f.srv.RequestProxy(t)
	cfg := role.Config()
	cfg.Address = p.URL()
	conn := connect(t, cfg, nil)
	if err := f.read(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	token := currentToken(t, conn)
	errs := f.readsInFlight(t, conn, p, 16, func() { revoke(t, f.srv, token) })
	for _, err := range errs {
		var e *connection.Error
		switch {
		case !errors.Is(err, connection.ErrInvalidCredentials) || errors.Is(err, connection.ErrPermissionDenied):
			t.Fatalf("read after revocation with a used-up secret_id: %v, want ErrInvalidCredentials", err)
		case !errors.As(err, &e) || e.Op != "login" || e.Path != "auth/approle/login":
			t.Fatalf("error = %#v, want a login *Error", err)
		case !strings.Contains(err.Error(), "revoked or expired"):
			t.Fatalf("message %q does not say that the token was revoked or expired", err)
		case strings.Contains(err.Error(), role.SecretID):
			t.Fatalf("the secret_id is in the error: %v", err)
		}
	}
	if n := p.Count("auth/approle/login"); n != 2 {
		t.Errorf("%d logins sent, want 2 (the first, then one refused for all the reads in flight)", n)
	}
	if n := p.Count(f.path); n != 17 {
		t.Errorf("%d reads sent, want 17 (one, then 16 refused and not run again)", n)
	}
}

// Issue #10, defect 8: a policy's refusal names the capability needed and
// the ones the token has.
func TestPermissionDeniedSaysWhatTheTokenHas(t *testing.T) {
	f := newFixture(t)
	writer := f.srv.Policy(t, fmt.Sprintf(`path %q { capabilities = ["read", "update"] }`, f.mount+"/data/*"))
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{writer}})
	conn := connect(t, role.Config(), nil)
	ctx := context.Background()
	write := func(conn *connection.Conn, path, capability string) *connection.Error {
		t.Helper()
		err := conn.Do(ctx, "write", path, capability, func(c *api.Client) error {
			_, err := c.Logical().WriteWithContext(ctx, path, map[string]any{"data": map[string]any{"k": "v"}})
			return err
		})
		var e *connection.Error
		if !errors.Is(err, connection.ErrPermissionDenied) || !errors.As(err, &e) || e.Status != http.StatusForbidden {
			t.Fatalf("write %s: %v, want ErrPermissionDenied", path, err)
		}
		return e
	}

	// Creating a secret needs create, which the policy lacks.
	created := f.mount + "/data/new"
	e := write(conn, created, "create")
	want := fmt.Sprintf(`vault: write %s: permission denied: the token lacks the "create" capability on %q (it has: read, update)`, created, created)
	if e.Error() != want || !slices.Equal(e.Granted, []string{"read", "update"}) {
		t.Fatalf("error = %q with Granted %v,\nwant    %q with read and update", e, e.Granted, want)
	}
	// A caller that named update for the write hears that create was
	// needed: the token has update.
	if e := write(conn, created, "update"); e.Capability != "create" || e.Error() != want {
		t.Fatalf("error = %q (Capability %q), want %q", e, e.Capability, want)
	}
	// No capability at all.
	outside := "secret/data/elsewhere"
	if e := write(conn, outside, "create"); !strings.HasSuffix(e.Error(), `lacks the "create" capability on "secret/data/elsewhere" (it has none)`) {
		t.Fatalf("error = %q", e)
	}
	if n := conn.Logins(); n != 1 {
		t.Fatalf("logins = %d, want 1: a policy's refusal is not a dead token", n)
	}

	// A token that may not ask for its capabilities gets the plain message.
	mute := f.srv.Policy(t, `path "sys/capabilities-self" { capabilities = ["deny"] }`)
	role = f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{writer, mute}})
	e = write(connect(t, role.Config(), nil), created, "create")
	if want := fmt.Sprintf(`vault: write %s: permission denied: the token lacks the "create" capability on %q`, created, created); e.Error() != want || e.Granted != nil {
		t.Fatalf("error = %q (Granted %v), want %q", e, e.Granted, want)
	}
}

// Issue #10, defect 2: the connection's own Timeout came out as a bare
// context.DeadlineExceeded, which callers take for their own cancellation.
func TestClientTimeoutIsNotTheCallersCancellation(t *testing.T) {
	// A frozen proxy accepts connections and never answers on them.
	silent, err := vaulttest.NewProxy("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	silent.Freeze()
	addr, accepted := silent.URL(), func() int { return silent.Stats().Accepted }
	read := func(ctx context.Context, conn *connection.Conn) error {
		return conn.Do(ctx, "read", "secret/data/x", "read", func(c *api.Client) error {
			_, err := c.Logical().ReadWithContext(ctx, "secret/data/x")
			return err
		})
	}
	token := &connection.Token{Token: connection.Credential{Value: "t"}}
	for _, retries := range []int{-1, 0, 2} {
		t.Run(fmt.Sprintf("MaxRetries %d", retries), func(t *testing.T) {
			conn := connect(t, connection.Config{Address: addr, Token: token, Timeout: 300 * time.Millisecond, MaxRetries: retries}, nil)
			err := read(context.Background(), conn)
			var e *connection.Error
			switch {
			case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
				t.Fatalf("the client's timeout came out as a context error: %v", err)
			case !errors.Is(err, connection.ErrUnreachable) || !errors.As(err, &e) || e.Op != "read" || e.Path != "secret/data/x":
				t.Fatalf("err = %#v, want a read *Error wrapping ErrUnreachable", err)
			case !strings.Contains(err.Error(), "no answer within 300ms"):
				t.Fatalf("message %q does not say how long it waited", err)
			}
		})
	}

	t.Run("login", func(t *testing.T) {
		before := accepted()
		conn := connect(t, connection.Config{Address: addr, Timeout: 300 * time.Millisecond, MaxRetries: -1,
			AppRole: &connection.AppRole{RoleID: "r", SecretID: connection.Credential{Value: "s"}}}, nil)
		err := read(context.Background(), conn)
		var e *connection.Error
		if !errors.Is(err, connection.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) || e.Op != "login" {
			t.Fatalf("err = %v, want a login *Error wrapping ErrUnreachable", err)
		}
		if n := accepted() - before; n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})

	// The caller's own deadline and cancellation pass through as they are.
	conn := connect(t, connection.Config{Address: addr, Token: token, Timeout: time.Minute}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := read(ctx, conn); err != context.DeadlineExceeded {
		t.Fatalf("err = %#v, want the caller's context.DeadlineExceeded as it is", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if err := read(ctx, conn); err != context.Canceled {
		t.Fatalf("err = %#v, want the caller's context.Canceled as it is", err)
	}
}

// The login that replaces a revoked token gets no answer: one clear error,
// no loop, and the next call logs in once the server answers again.
func TestReloginWithoutAnswer(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}})
	p := f.srv.RequestProxy(t)
	cfg := role.Config()
	cfg.Address = p.URL()
	cfg.Timeout = time.Second
	conn := connect(t, cfg, nil)
	ctx := context.Background()
	if err := f.read(ctx, conn); err != nil {
		t.Fatal(err)
	}
	revoke(t, f.srv, currentToken(t, conn))
	p.Intercept(func(r *http.Request) vaulttest.Verdict {
		if r.URL.Path == "/v1/auth/approle/login" {
			return vaulttest.Stall
		}
		return vaulttest.Forward
	})
	err := f.read(ctx, conn)
	var e *connection.Error
	switch {
	case !errors.Is(err, connection.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) || e.Op != "login":
		t.Fatalf("read with the re-login unanswered: %v, want a login *Error wrapping ErrUnreachable", err)
	case !strings.Contains(err.Error(), "no answer within 1s") || !strings.Contains(err.Error(), "revoked or expired"):
		t.Fatalf("message %q does not say what happened", err)
	}
	if n := p.Count("auth/approle/login"); n != 2 {
		t.Errorf("%d logins sent, want 2", n)
	}
	if n := p.Count(f.path); n != 2 {
		t.Errorf("%d reads sent, want 2 (no retry without a token)", n)
	}

	p.Intercept(nil)
	if err := f.read(ctx, conn); err != nil {
		t.Fatalf("read once the server answers logins again: %v", err)
	}
	if n := conn.Logins(); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}
}

// Close revokes the token in use, once, and never one already revoked.
func TestCloseRevokesOnlyTheCurrentTokenOnce(t *testing.T) {
	f := newFixture(t)
	_, p, conn := f.revokedAfterOneRead(t, vaulttest.RoleOptions{Policies: []string{f.policy}})
	ctx := context.Background()
	if err := f.read(ctx, conn); err != nil {
		t.Fatal(err)
	}
	token := currentToken(t, conn)
	for range 2 {
		if err := conn.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Count("auth/token/revoke-self"); n != 1 {
		t.Fatalf("%d revocations sent, want 1 (the token in use; the revoked one is dead already)", n)
	}
	if _, err := f.srv.Client(t).Auth().Token().Lookup(token); err == nil {
		t.Fatal("the token still works after Close")
	}
}

// A login that ends after Close revokes the token it got.
func TestCloseDuringLogin(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}})
	p := f.srv.RequestProxy(t)
	cfg := role.Config()
	cfg.Address = p.URL()
	conn := connect(t, cfg, nil)
	h := p.HoldNext("auth/approle/login", 1)
	done := make(chan error)
	go func() { done <- f.read(context.Background(), conn) }()
	h.Wait(t)
	if err := conn.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.Release()
	if err := <-done; !errors.Is(err, connection.ErrClosed) {
		t.Fatalf("read whose login ended after Close: %v, want ErrClosed", err)
	}
	if n := p.Count("auth/token/revoke-self"); n != 1 {
		t.Fatalf("%d revocations sent, want 1 (the late login's token)", n)
	}
	if n := p.Count(f.path); n != 0 {
		t.Fatalf("%d reads sent after Close", n)
	}
}

// Issue #10, defect 9: 429 after the retries is ErrRateLimited, and the
// retries honour Retry-After.
func TestRateLimited(t *testing.T) {
	type server struct {
		URL   string
		mu    gosync.Mutex
		times []time.Time
	}
	newServer := func(retryAfter string) *server {
		s := &server{}
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.times = append(s.times, time.Now())
			s.mu.Unlock()
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"errors":["1 error occurred:\n\t* request path \"secret/data/x\": rate limit quota exceeded\n\n"]}`)
		}))
		t.Cleanup(ts.Close)
		s.URL = ts.URL
		return s
	}
	read := func(s *server, retries int) error {
		conn := connect(t, connection.Config{Address: s.URL, Token: &connection.Token{Token: connection.Credential{Value: "t"}},
			MaxRetries: retries, Timeout: 10 * time.Second}, nil)
		ctx := context.Background()
		return conn.Do(ctx, "read", "secret/data/x", "read", func(c *api.Client) error {
			_, err := c.Logical().ReadWithContext(ctx, "secret/data/x")
			return err
		})
	}
	check := func(err error) {
		t.Helper()
		var e *connection.Error
		if !errors.Is(err, connection.ErrRateLimited) || !errors.As(err, &e) || e.Status != http.StatusTooManyRequests || e.Op != "read" {
			t.Fatalf("err = %v, want a read *Error wrapping ErrRateLimited with status 429", err)
		}
		if !strings.Contains(err.Error(), "rate limit quota exceeded") {
			t.Fatalf("message %q lacks Vault's reason", err)
		}
	}

	// Retry-After: 1 is waited for, twice, then the 429 is returned.
	s := newServer("1")
	check(read(s, 2))
	if len(s.times) != 3 {
		t.Fatalf("%d attempts, want 3 (two retries)", len(s.times))
	}
	for i := 1; i < len(s.times); i++ {
		if gap := s.times[i].Sub(s.times[i-1]); gap < 900*time.Millisecond {
			t.Errorf("retry %d came %v after the 429 that asked for 1s", i, gap)
		}
	}
	// Without Retry-After, backoff; with retries off, one attempt.
	s = newServer("")
	check(read(s, 2))
	if len(s.times) != 3 {
		t.Fatalf("%d attempts, want 3", len(s.times))
	}
	s = newServer("1")
	check(read(s, -1))
	if len(s.times) != 1 {
		t.Fatalf("%d attempts, want 1", len(s.times))
	}
	// A Retry-After longer than the connection waits (5s) is not waited
	// for: the 429 comes back at once, not as a timeout.
	s = newServer("120")
	check(read(s, 2))
	if len(s.times) != 1 {
		t.Fatalf("%d attempts, want 1", len(s.times))
	}
}

// A sealed server stays ErrSealed (Vault 1.19 answers 503 "Vault is sealed",
// as the server below does).
func TestSealed(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"errors":["Vault is sealed"]}`)
	}))
	defer ts.Close()
	conn := connect(t, connection.Config{Address: ts.URL, MaxRetries: -1, Token: &connection.Token{Token: connection.Credential{Value: "t"}}}, nil)
	ctx := context.Background()
	err := conn.Do(ctx, "read", "secret/data/x", "read", func(c *api.Client) error {
		_, err := c.Logical().ReadWithContext(ctx, "secret/data/x")
		return err
	})
	if !errors.Is(err, connection.ErrSealed) {
		t.Fatalf("err = %v, want ErrSealed", err)
	}
}
