package connection_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// fixture is a KV v2 mount with one secret, and a policy that may read it.
type fixture struct {
	srv    *vaulttest.Server
	mount  string
	path   string // the secret's API path, mount/data/app
	policy string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	ctx := context.Background()
	if _, err := srv.Client(t).KVv2(mount).Put(ctx, "app", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	policy := srv.Policy(t, fmt.Sprintf(`path %q { capabilities = ["read"] }`, mount+"/data/app"))
	return &fixture{srv: srv, mount: mount, path: mount + "/data/app", policy: policy}
}

// revokedAfterOneRead logs in with a new role through a counting proxy,
// reads once, and revokes the token behind the connection's back.
func (f *fixture) revokedAfterOneRead(t *testing.T, opts vaulttest.RoleOptions) (*vaulttest.Role, *vaulttest.RequestProxy, *connection.Conn) {
	t.Helper()
	role := f.srv.AppRole(t, &opts)
	proxy := f.srv.RequestProxy(t)
	cfg := role.Config()
	cfg.Address = proxy.URL()
	conn := connect(t, cfg, nil)
	if err := f.read(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	revoke(t, f.srv, currentToken(t, conn))
	return role, proxy, conn
}

// read reads the fixture's secret through conn.
func (f *fixture) read(ctx context.Context, conn *connection.Conn) error {
	return conn.Do(ctx, "read", f.path, "read", func(c *api.Client) error {
		s, err := c.Logical().ReadWithContext(ctx, f.path)
		if err == nil && s == nil {
			err = errors.New("secret not found")
		}
		return err
	})
}

func connect(t *testing.T, cfg connection.Config, opts *connection.Options) *connection.Conn {
	t.Helper()
	conn, err := connection.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// currentToken returns the token the connection holds now.
func currentToken(t *testing.T, conn *connection.Conn) string {
	t.Helper()
	c, err := conn.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c.Token()
}

// revoke revokes a token behind the connection's back.
func revoke(t *testing.T, srv *vaulttest.Server, token string) {
	t.Helper()
	if _, err := srv.Client(t).Logical().Write("auth/token/revoke", map[string]any{"token": token}); err != nil {
		t.Fatal(err)
	}
}

func TestAppRoleLogin(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}})
	rec := &audit.Recorder{}
	conn := connect(t, role.Config(), &connection.Options{Name: "primary", Auditor: rec})
	if n := conn.Logins(); n != 0 {
		t.Fatalf("New logged in %d times; it should wait until a token is needed", n)
	}
	ctx := context.Background()
	for range 3 {
		if err := f.read(ctx, conn); err != nil {
			t.Fatal(err)
		}
	}
	if n := conn.Logins(); n != 1 {
		t.Fatalf("logins = %d, want 1", n)
	}

	// The token is the role's, not root.
	self, err := f.srv.Client(t).Auth().Token().Lookup(currentToken(t, conn))
	if err != nil {
		t.Fatal(err)
	}
	policies, _ := self.TokenPolicies()
	if strings.Join(policies, ",") != "default,"+f.policy {
		t.Errorf("token policies = %v, want default and %s", policies, f.policy)
	}

	events := rec.Events()
	if len(events) != 1 || events[0].Type != "HCV_CONNECTION_CREATED" || events[0].Attrs["connection"] != "primary" || events[0].Attrs["auth"] != "approle" {
		t.Fatalf("events = %+v, want one HCV_CONNECTION_CREATED for primary over approle", events)
	}
	if s := fmt.Sprintf("%+v %v %s", events, conn, conn.Config()); strings.Contains(s, role.SecretID) || strings.Contains(s, role.RoleID) {
		t.Fatalf("credentials printed: %s", s)
	}
}

func TestShortTokenTTLAcrossALongRun(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}, TokenTTL: 3 * time.Second, TokenMaxTTL: 6 * time.Second})
	conn := connect(t, role.Config(), nil)
	ctx := context.Background()
	start := time.Now()
	n := 0
	for time.Since(start) < 15*time.Second {
		if err := f.read(ctx, conn); err != nil {
			t.Fatalf("request %d after %v: %v", n, time.Since(start).Round(time.Millisecond), err)
		}
		n++
		time.Sleep(100 * time.Millisecond)
	}
	// A token lives at most 6 s, so 15 s need at least three tokens; the
	// renewals keep each alive until its max TTL, so not many more.
	logins := conn.Logins()
	t.Logf("%d requests over %v with %d logins", n, time.Since(start).Round(time.Millisecond), logins)
	if logins < 3 || logins > 8 {
		t.Fatalf("logins = %d over 15 s with token_ttl 3s and token_max_ttl 6s, want 3 to 8", logins)
	}
}

func TestRevokedTokenLeadsToOneNewLogin(t *testing.T) {
	f := newFixture(t)
	_, proxy, conn := f.revokedAfterOneRead(t, vaulttest.RoleOptions{Policies: []string{f.policy}})
	ctx := context.Background()
	if err := f.read(ctx, conn); err != nil {
		t.Fatalf("read after the token was revoked: %v", err)
	}
	if n := conn.Logins(); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}
	if n := proxy.Count(f.path); n != 3 {
		t.Errorf("%d reads of %s, want 3 (one, then the refused one and its retry)", n, f.path)
	}
}

func TestUsedUpSecretIDFailsWithoutLooping(t *testing.T) {
	f := newFixture(t)
	role, proxy, conn := f.revokedAfterOneRead(t, vaulttest.RoleOptions{Policies: []string{f.policy}, SecretIDNumUses: 1})
	ctx := context.Background()
	err := f.read(ctx, conn)
	if !errors.Is(err, connection.ErrInvalidCredentials) {
		t.Fatalf("read with a used-up secret_id: %v, want ErrInvalidCredentials", err)
	}
	var e *connection.Error
	if !errors.As(err, &e) || e.Op != "login" || e.Path != "auth/approle/login" {
		t.Fatalf("error = %#v, want a login *Error on auth/approle/login", err)
	}
	if n := proxy.Count("auth/approle/login"); n != 2 {
		t.Errorf("%d logins sent, want 2 (the first, then one refused)", n)
	}
	if n := proxy.Count(f.path); n != 2 {
		t.Errorf("%d reads sent, want 2 (no retry after the refused login)", n)
	}
	if strings.Contains(err.Error(), role.SecretID) {
		t.Fatalf("the secret_id is in the error: %v", err)
	}
}

func TestWrappedSecretID(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}})
	wrap := role.WrappedSecretID(t, time.Minute)
	cfg := connection.Config{Address: f.srv.Addr, AppRole: &connection.AppRole{
		RoleID: role.RoleID, SecretID: connection.Credential{Value: wrap}, Wrapped: true,
	}}
	conn := connect(t, cfg, nil)
	ctx := context.Background()
	if err := f.read(ctx, conn); err != nil {
		t.Fatal(err)
	}
	// A second login cannot unwrap the same token again; the connection
	// kept the secret_id it unwrapped.
	revoke(t, f.srv, currentToken(t, conn))
	if err := f.read(ctx, conn); err != nil {
		t.Fatalf("read after the token was revoked: %v", err)
	}
	if n := conn.Logins(); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}

	// Another connection given the already-unwrapped token is refused.
	used := connect(t, cfg, nil)
	err := f.read(ctx, used)
	var e *connection.Error
	if !errors.Is(err, connection.ErrInvalidCredentials) || !errors.As(err, &e) || e.Op != "unwrap" {
		t.Fatalf("read with a used wrapping token: %v, want an unwrap *Error with ErrInvalidCredentials", err)
	}
	if strings.Contains(err.Error(), wrap) {
		t.Fatalf("the wrapping token is in the error: %v", err)
	}
}

func TestSecretIDFileRotation(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}})
	file := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(file, []byte(role.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := connection.Config{Address: f.srv.Addr, AppRole: &connection.AppRole{
		RoleID: role.RoleID, SecretID: connection.Credential{File: file},
	}}
	conn := connect(t, cfg, nil)
	ctx := context.Background()
	if err := f.read(ctx, conn); err != nil {
		t.Fatal(err)
	}

	// Rotate: a new secret_id in the file, the old one destroyed, and the
	// token revoked so that the next request must log in.
	next := role.NewSecretID(t)
	if err := os.WriteFile(file, []byte(next+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := f.srv.Client(t)
	if _, err := root.Logical().Write("auth/approle/role/"+role.Name+"/secret-id/destroy", map[string]any{"secret_id": role.SecretID}); err != nil {
		t.Fatal(err)
	}
	revoke(t, f.srv, currentToken(t, conn))
	if err := f.read(ctx, conn); err != nil {
		t.Fatalf("read after rotation: %v", err)
	}
	if n := conn.Logins(); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}
}

func TestLoginErrors(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}})
	ctx := context.Background()

	t.Run("wrong secret_id", func(t *testing.T) {
		const wrong = "b7c1c0de-0000-4000-8000-canary0secret"
		cfg := role.Config()
		cfg.AppRole.SecretID = connection.Credential{Value: wrong}
		err := f.read(ctx, connect(t, cfg, nil))
		if !errors.Is(err, connection.ErrInvalidCredentials) {
			t.Fatalf("err = %v, want ErrInvalidCredentials", err)
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), role.RoleID) {
			t.Fatalf("a credential is in the error: %v", err)
		}
	})
	t.Run("wrong role_id", func(t *testing.T) {
		cfg := role.Config()
		cfg.AppRole.RoleID = "no-such-role"
		if err := f.read(ctx, connect(t, cfg, nil)); !errors.Is(err, connection.ErrInvalidCredentials) {
			t.Fatalf("err = %v, want ErrInvalidCredentials", err)
		}
	})
	t.Run("wrong mount", func(t *testing.T) {
		cfg := role.Config()
		cfg.AppRole.MountPath = "no-such-approle"
		if err := f.read(ctx, connect(t, cfg, nil)); err == nil {
			t.Fatal("login on a mount that does not exist succeeded")
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		cfg := role.Config()
		cfg.Address = "http://127.0.0.1:1"
		cfg.MaxRetries = -1
		err := f.read(ctx, connect(t, cfg, nil))
		if !errors.Is(err, connection.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
	})
	t.Run("TLS to a plain HTTP server", func(t *testing.T) {
		cfg := role.Config()
		cfg.Address = strings.Replace(f.srv.Addr, "http://", "https://", 1)
		cfg.MaxRetries = -1
		err := f.read(ctx, connect(t, cfg, nil))
		if !errors.Is(err, connection.ErrTLS) {
			t.Fatalf("err = %v, want ErrTLS", err)
		}
	})
}

func TestPermissionDeniedNamesPathAndCapability(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}})
	conn := connect(t, role.Config(), nil)
	ctx := context.Background()
	other := f.mount + "/data/other"
	err := conn.Do(ctx, "write", other, "create", func(c *api.Client) error {
		_, err := c.Logical().WriteWithContext(ctx, other, map[string]any{"data": map[string]any{"k": "v"}})
		return err
	})
	if !errors.Is(err, connection.ErrPermissionDenied) {
		t.Fatalf("err = %v, want ErrPermissionDenied", err)
	}
	var e *connection.Error
	if !errors.As(err, &e) || e.Path != other || e.Capability != "create" || e.Status != http.StatusForbidden {
		t.Fatalf("error = %#v, want one naming %s and create", err, other)
	}
	if !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), `"create"`) {
		t.Fatalf("message %q names neither the path nor the capability", err)
	}
	// A missing capability is not a dead token: no new login.
	if n := conn.Logins(); n != 1 {
		t.Fatalf("logins = %d, want 1", n)
	}
}

func TestCloseRevokesTheToken(t *testing.T) {
	f := newFixture(t)
	role := f.srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{f.policy}})
	conn := connect(t, role.Config(), nil)
	ctx := context.Background()
	if err := f.read(ctx, conn); err != nil {
		t.Fatal(err)
	}
	token := currentToken(t, conn)
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Client(t).Auth().Token().Lookup(token); err == nil {
		t.Fatal("the token still works after Close")
	}
	if err := f.read(ctx, conn); !errors.Is(err, connection.ErrClosed) {
		t.Fatalf("read after Close: %v, want ErrClosed", err)
	}
}

func TestUserTokenIsLeftAlone(t *testing.T) {
	f := newFixture(t)
	root := f.srv.Client(t)
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{f.policy}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, connection.Config{Address: f.srv.Addr, Token: &connection.Token{Token: connection.Credential{Value: tok.Auth.ClientToken}}}, nil)
	ctx := context.Background()
	if err := f.read(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Auth().Token().Lookup(tok.Auth.ClientToken); err != nil {
		t.Fatalf("Close revoked a token the user manages: %v", err)
	}
	if conn.Logins() != 0 {
		t.Fatalf("a token connection logged in")
	}
}
