// Package vaulttest gives tests a real HashiCorp Vault server.
//
// With VAULT_ADDR and VAULT_TOKEN set, tests use that server. Otherwise a
// Vault dev server is started in Docker with testcontainers-go, from the
// image named by SECRETSYNC_VAULT_IMAGE (default hashicorp/vault:1.19.0).
// The harness sets the entrypoint (/bin/vault) and the dev-server command
// itself, so the official image and an image holding only the vault binary
// (see the project's scripts/vault-image) both work.
//
// A test package shares one server:
//
//	func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		srv := vaulttest.Get(t)
//		mount := srv.NewMount(t) // a fresh KV v2 mount, removed after the test
//		...
//	}
//
// When Vault cannot start, Get fails the test: a test that needs Vault is
// never skipped.
//
// This package depends on testcontainers-go and the Docker client; only
// tests import it.
package vaulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/secretsync/secretsync/connection"
)

// DefaultImage is the image used when SECRETSYNC_VAULT_IMAGE is not set.
const DefaultImage = "hashicorp/vault:1.19.0"

// Server is a running Vault server with a root token. Tests use the root
// token only to set up fixtures and to look behind the code under test;
// code under test gets its own connection (Conn, AppRole).
type Server struct {
	// Addr is the server's address, for example http://127.0.0.1:32768.
	Addr string
	// Token is a root token.
	Token string
	// Version is the server's version, from sys/health.
	Version string

	stop func(context.Context) error
}

var shared struct {
	mu     gosync.Mutex
	srv    *Server
	err    error
	inMain bool
}

// Main runs the tests of a package that share one server, started by the
// first Get, and stops it after the tests. Use it from TestMain.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil && shared.srv.stop != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := shared.srv.stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "vaulttest: stopping Vault: %v\n", err)
		}
	}
	return code
}

// Get returns the package's server, starting it on first use. It fails the
// test when no server can be had. Outside Main, each call starts a server
// that is stopped when the test ends.
func Get(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		srv, err := Start(context.Background())
		if err != nil {
			t.Fatalf("vaulttest: %v", err)
		}
		t.Cleanup(func() {
			if srv.stop != nil {
				_ = srv.stop(context.Background())
			}
		})
		return srv
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = Start(context.Background())
	}
	if shared.err != nil {
		t.Fatalf("vaulttest: %v", shared.err)
	}
	return shared.srv
}

// Start returns a server: the one named by VAULT_ADDR and VAULT_TOKEN, or a
// new dev server in Docker. The caller stops it with Stop.
func Start(ctx context.Context) (*Server, error) {
	if addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN"); addr != "" && token != "" {
		srv := &Server{Addr: strings.TrimRight(addr, "/"), Token: token}
		if err := srv.waitHealthy(ctx, 10*time.Second); err != nil {
			return nil, fmt.Errorf("VAULT_ADDR=%s: %w", addr, err)
		}
		note("vaulttest: using Vault %s at %s (VAULT_ADDR)", srv.Version, srv.Addr)
		return srv, nil
	}
	return startContainer(ctx)
}

// Stop stops a server that Start started in Docker; for a server given by
// VAULT_ADDR it does nothing.
func (s *Server) Stop(ctx context.Context) error {
	if s.stop == nil {
		return nil
	}
	return s.stop(ctx)
}

func startContainer(ctx context.Context) (*Server, error) {
	image := os.Getenv("SECRETSYNC_VAULT_IMAGE")
	if image == "" {
		image = DefaultImage
	}
	token := "root-" + randomHex(8)
	began := time.Now()
	req := testcontainers.ContainerRequest{
		Image:      image,
		Entrypoint: []string{"/bin/vault"},
		Cmd: []string{"server", "-dev", "-dev-listen-address=0.0.0.0:8200",
			"-dev-root-token-id=" + token, "-dev-no-store-token"},
		Env:          map[string]string{"SKIP_SETCAP": "true"},
		ExposedPorts: []string{"8200/tcp"},
		WaitingFor: wait.ForHTTP("/v1/sys/health").WithPort("8200/tcp").
			WithStatusCodeMatcher(func(code int) bool { return code == http.StatusOK }).
			WithStartupTimeout(60 * time.Second),
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if err != nil {
		if c != nil {
			_ = c.Terminate(context.Background())
		}
		return nil, fmt.Errorf("start Vault from image %s (build it with scripts/vault-image, or set VAULT_ADDR and VAULT_TOKEN): %w", image, err)
	}
	host, err := c.Host(ctx)
	if err == nil {
		var port string
		if p, perr := c.MappedPort(ctx, "8200/tcp"); perr == nil {
			port = p.Port()
		} else {
			err = perr
		}
		if err == nil {
			srv := &Server{Addr: "http://" + host + ":" + port, Token: token,
				stop: func(ctx context.Context) error { return c.Terminate(ctx) }}
			if err = srv.waitHealthy(ctx, 30*time.Second); err == nil {
				note("vaulttest: started Vault %s from image %s in container %.12s at %s in %v",
					srv.Version, image, c.GetContainerID(), srv.Addr, time.Since(began).Round(time.Millisecond))
				return srv, nil
			}
		}
	}
	_ = c.Terminate(context.Background())
	return nil, fmt.Errorf("Vault container from %s: %w", image, err)
}

// note reports which server the tests use: on stderr (shown by go test -v
// or on failure) and, when SECRETSYNC_VAULTTEST_LOG names a file, appended
// to it, so that a test script can show it for passing packages too.
func note(format string, args ...any) {
	line := fmt.Sprintf(format, args...) + "\n"
	fmt.Fprint(os.Stderr, line)
	if p := os.Getenv("SECRETSYNC_VAULTTEST_LOG"); p != "" {
		if f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			_, _ = f.WriteString(line)
			_ = f.Close()
		}
	}
}

func (s *Server) waitHealthy(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	c, err := s.newClient()
	if err != nil {
		return err
	}
	for {
		h, err := c.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed {
			s.Version = h.Version
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("sealed or not initialized")
			}
			return fmt.Errorf("Vault at %s not healthy: %w", s.Addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) newClient() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 2
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(s.Token)
	return c, nil
}

// Client returns an API client with the root token, for fixtures and for
// looking behind the code under test.
func (s *Server) Client(t testing.TB) *api.Client {
	t.Helper()
	c, err := s.newClient()
	if err != nil {
		t.Fatalf("vaulttest: client: %v", err)
	}
	return c
}

// Conn returns a connection with the root token, closed when the test ends.
func (s *Server) Conn(t testing.TB) *connection.Conn {
	t.Helper()
	return s.connect(t, connection.Config{Address: s.Addr, Token: &connection.Token{Token: connection.Credential{Value: s.Token}}})
}

func (s *Server) connect(t testing.TB, cfg connection.Config) *connection.Conn {
	t.Helper()
	c, err := connection.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("vaulttest: connection: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// MountOptions adjust NewMount.
type MountOptions struct {
	// CASRequired sets cas_required on the mount.
	CASRequired bool
	// MaxVersions sets max_versions (Vault's default keeps 10).
	MaxVersions int
	// Version is the KV version, 2 by default; 1 makes a KV v1 mount (no
	// versions, no check-and-set, no metadata), on which CASRequired and
	// MaxVersions have no effect.
	Version int
}

// NewMount enables a KV mount with a fresh name and disables it when the
// test ends. It returns the mount's name.
func (s *Server) NewMount(t testing.TB, opts ...MountOptions) string {
	t.Helper()
	var o MountOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Version == 0 {
		o.Version = 2
	}
	c := s.Client(t)
	name := "kv-" + randomHex(6)
	ctx := context.Background()
	if err := c.Sys().MountWithContext(ctx, name, &api.MountInput{
		Type: "kv", Options: map[string]string{"version": fmt.Sprint(o.Version)},
	}); err != nil {
		t.Fatalf("vaulttest: mount %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Sys().UnmountWithContext(context.Background(), name) })
	if o.Version == 2 {
		// The v2 backend upgrades its storage in the background; wait until
		// its config answers, then set cas_required.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := c.Logical().WriteWithContext(ctx, name+"/config", map[string]any{"cas_required": o.CASRequired, "max_versions": o.MaxVersions})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("vaulttest: configure %s: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return name
}

// Policy writes a policy with a fresh name and returns the name.
func (s *Server) Policy(t testing.TB, hcl string) string {
	t.Helper()
	name := "p-" + randomHex(6)
	if err := s.Client(t).Sys().PutPolicyWithContext(context.Background(), name, hcl); err != nil {
		t.Fatalf("vaulttest: policy: %v", err)
	}
	return name
}

// RoleOptions adjust AppRole.
type RoleOptions struct {
	Policies    []string
	TokenTTL    time.Duration // 0: Vault's default
	TokenMaxTTL time.Duration
	SecretIDTTL time.Duration
	// SecretIDNumUses limits each secret_id's logins; 0 is unlimited.
	SecretIDNumUses int
}

// AppRole creates an AppRole role (enabling the auth method on first use)
// and returns its role_id and a new secret_id.
// A nil options means the zero RoleOptions.
func (s *Server) AppRole(t testing.TB, options *RoleOptions) (role *Role) {
	var opts RoleOptions
	if options != nil {
		opts = *options
	}
	t.Helper()
	c := s.Client(t)
	ctx := context.Background()
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		t.Fatalf("vaulttest: list auth: %v", err)
	}
	if _, ok := auths["approle/"]; !ok {
		err := c.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{Type: "approle"})
		if err != nil && !strings.Contains(err.Error(), "path is already in use") {
			t.Fatalf("vaulttest: enable approle: %v", err)
		}
	}
	name := "r-" + randomHex(6)
	data := map[string]any{
		"token_policies":     strings.Join(opts.Policies, ","),
		"token_ttl":          int(opts.TokenTTL.Seconds()),
		"token_max_ttl":      int(opts.TokenMaxTTL.Seconds()),
		"secret_id_ttl":      int(opts.SecretIDTTL.Seconds()),
		"secret_id_num_uses": opts.SecretIDNumUses,
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/approle/role/"+name, data); err != nil {
		t.Fatalf("vaulttest: role: %v", err)
	}
	sec, err := c.Logical().ReadWithContext(ctx, "auth/approle/role/"+name+"/role-id")
	if err != nil || sec == nil {
		t.Fatalf("vaulttest: role-id: %v", err)
	}
	r := &Role{s: s, Name: name, RoleID: sec.Data["role_id"].(string)}
	r.SecretID = r.NewSecretID(t)
	return r
}

// Role is an AppRole role made by AppRole.
type Role struct {
	s        *Server
	Name     string
	RoleID   string
	SecretID string
}

// NewSecretID issues another secret_id for the role.
func (r *Role) NewSecretID(t testing.TB) string {
	t.Helper()
	sec, err := r.s.Client(t).Logical().WriteWithContext(context.Background(), "auth/approle/role/"+r.Name+"/secret-id", nil)
	if err != nil || sec == nil {
		t.Fatalf("vaulttest: secret-id: %v", err)
	}
	return sec.Data["secret_id"].(string)
}

// WrappedSecretID issues a secret_id in a response-wrapping token with the
// given TTL, and returns the wrapping token.
func (r *Role) WrappedSecretID(t testing.TB, ttl time.Duration) string {
	t.Helper()
	c := r.s.Client(t)
	c.SetWrappingLookupFunc(func(string, string) string { return ttl.String() })
	sec, err := c.Logical().WriteWithContext(context.Background(), "auth/approle/role/"+r.Name+"/secret-id", nil)
	if err != nil || sec == nil || sec.WrapInfo == nil {
		t.Fatalf("vaulttest: wrapped secret-id: %v", err)
	}
	return sec.WrapInfo.Token
}

// Config returns a connection config that logs in with the role.
func (r *Role) Config() connection.Config {
	return connection.Config{Address: r.s.Addr, AppRole: &connection.AppRole{RoleID: r.RoleID, SecretID: connection.Credential{Value: r.SecretID}}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
