package vaulttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/testcontainers/testcontainers-go"
)

// durableConfig is the server configuration of a Durable server: a
// production-mode server (no -dev) whose data lives in raft storage, so
// that it survives a restart of the container and a seal. (The minimal
// Vault build that scripts/vault-image makes has no file storage.)
const durableConfig = `
disable_mlock = true
ui            = false
api_addr      = "http://127.0.0.1:8200"
cluster_addr  = "http://127.0.0.1:8201"

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_disable     = true
}

storage "raft" {
  path    = "/vault/data"
  node_id = "vaulttest"
  # Production timing (the default, 5) makes a single node wait seconds
  # for its own election after each start and unseal.
  performance_multiplier = 1
}
`

// Durable is a Vault server whose data survives restarts and seals, for
// tests of what a sync does when Vault goes away mid-round. Unlike the dev
// server of Start, it is a production-mode server with raft storage,
// started in Docker from the same image (SECRETSYNC_VAULT_IMAGE), then
// initialized with one key share, unsealed, and given to the test with its
// root token.
//
// Its Addr is a loopback [Proxy] in front of the container, so it stays
// the same when the container comes back on another port after Restart,
// and a test can freeze or cut the connections of the code under test
// (d.Proxy.Freeze, d.Proxy.Cut). Fixture and inspection helpers inherited
// from [Server] (Client, Conn, NewMount, ...) go through the proxy too;
// [Durable.Direct] gives the same helpers without it, for looking behind a
// frozen or cut proxy.
//
// A Durable server always runs in Docker: VAULT_ADDR and VAULT_TOKEN do not
// apply, since the test must be able to restart it. When it cannot start,
// NewDurable fails the test.
//
// The methods of a Durable are safe for concurrent use, but a test should
// not restart, seal and unseal it from several goroutines at once.
type Durable struct {
	*Server
	// UnsealKey is the server's only unseal key (one share, threshold 1).
	UnsealKey string
	// Proxy is the proxy that Addr points at.
	Proxy *Proxy

	mu     gosync.Mutex
	c      testcontainers.Container
	direct string // http://host:port of the container, changes on restart
	image  string
}

// NewDurable starts a Durable server for the test and stops it when the
// test ends. It fails the test when the server cannot start.
func NewDurable(t testing.TB) *Durable {
	t.Helper()
	d, err := StartDurable(context.Background())
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Logf("vaulttest: stopping durable Vault: %v", err)
		}
	})
	return d
}

// StartDurable starts a Durable server in Docker. The caller stops it with
// Stop.
func StartDurable(ctx context.Context) (*Durable, error) {
	image := os.Getenv("SECRETSYNC_VAULT_IMAGE")
	if image == "" {
		image = DefaultImage
	}
	began := time.Now()
	req := testcontainers.ContainerRequest{
		Image:        image,
		Entrypoint:   []string{"/bin/vault"},
		Cmd:          []string{"server", "-config=/vault/config/vault.hcl"},
		Env:          map[string]string{"SKIP_SETCAP": "true"},
		ExposedPorts: []string{"8200/tcp"},
		Files: []testcontainers.ContainerFile{
			{Reader: strings.NewReader(durableConfig), ContainerFilePath: "/vault/config/vault.hcl", FileMode: 0o644},
			// Raft needs its directory to exist; copying a file into it
			// creates it (the image may have no shell to run mkdir).
			{Reader: strings.NewReader(""), ContainerFilePath: "/vault/data/.keep", FileMode: 0o600},
		},
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if err != nil {
		if c != nil {
			_ = c.Terminate(context.Background())
		}
		return nil, fmt.Errorf("start durable Vault from image %s (build it with scripts/vault-image): %w", image, err)
	}
	d := &Durable{c: c, image: image}
	if err := d.setUp(ctx); err != nil {
		_ = c.Terminate(context.Background())
		if d.Proxy != nil {
			_ = d.Proxy.Close()
		}
		return nil, fmt.Errorf("durable Vault from %s: %w", image, err)
	}
	note("vaulttest: started durable Vault %s (raft storage) from image %s in container %.12s at %s (proxy for %s) in %v",
		d.Version, image, c.GetContainerID(), d.Addr, d.DirectAddr(), time.Since(began).Round(time.Millisecond))
	return d, nil
}

// setUp initializes and unseals a new server and puts the proxy in front.
func (d *Durable) setUp(ctx context.Context) error {
	if err := d.locate(ctx); err != nil {
		return err
	}
	cl, err := d.adminClient("")
	if err != nil {
		return err
	}
	if err := d.waitAnswer(ctx, 60*time.Second); err != nil {
		return err
	}
	ir, err := cl.Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if len(ir.Keys) != 1 || ir.RootToken == "" {
		return errors.New("init: no unseal key or root token in the answer")
	}
	d.UnsealKey = ir.Keys[0]
	target := strings.TrimPrefix(d.DirectAddr(), "http://")
	if d.Proxy, err = NewProxy(target); err != nil {
		return err
	}
	d.Server = &Server{Addr: d.Proxy.URL(), Token: ir.RootToken, stop: d.Stop}
	if err := d.Unseal(ctx); err != nil {
		return err
	}
	h, err := cl.Sys().HealthWithContext(ctx)
	if err != nil {
		return err
	}
	d.Version = h.Version
	return nil
}

// container returns the container, or an error after Stop.
func (d *Durable) container() (testcontainers.Container, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		return nil, errors.New("vaulttest: durable Vault was stopped")
	}
	return d.c, nil
}

// locate reads the container's current address.
func (d *Durable) locate(ctx context.Context) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	host, err := c.Host(ctx)
	if err != nil {
		return err
	}
	port, err := c.MappedPort(ctx, "8200/tcp")
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.direct = "http://" + net.JoinHostPort(host, port.Port())
	d.mu.Unlock()
	if d.Proxy != nil {
		d.Proxy.Retarget(net.JoinHostPort(host, port.Port()))
	}
	return nil
}

// DirectAddr returns the container's own address, without the proxy. It
// changes when the container restarts.
func (d *Durable) DirectAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.direct
}

// Direct returns the server as reached without the proxy, with the root
// token, for looking behind a frozen or cut proxy. Its Addr is only good
// until the next restart; call Direct again after one. Its Stop does
// nothing.
func (d *Durable) Direct() *Server {
	return &Server{Addr: d.DirectAddr(), Token: d.Token, Version: d.Version}
}

// adminClient returns a client for the container's own address, without
// the proxy, with token (none when empty). Admin calls must work while the
// proxy is frozen or cut.
func (d *Durable) adminClient(token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = d.DirectAddr()
	cfg.MaxRetries = 0
	cfg.Timeout = time.Minute // init with raft storage takes seconds
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.ClearToken()
	if token != "" {
		c.SetToken(token)
	}
	return c, nil
}

// waitAnswer waits until the server answers HTTP at all (sealed or not).
func (d *Durable) waitAnswer(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.DirectAddr()+"/v1/sys/health", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Vault at %s does not answer: %w", d.DirectAddr(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitActive waits until the server is unsealed and the active node (raft
// has elected it leader), so that it serves writes.
func (d *Durable) waitActive(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	cl, err := d.adminClient("")
	if err != nil {
		return err
	}
	for {
		h, err := cl.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed && !h.Standby {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("initialized=%v sealed=%v standby=%v", h.Initialized, h.Sealed, h.Standby)
			}
			return fmt.Errorf("Vault at %s not active: %w", d.DirectAddr(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Seal seals the server. Requests then fail with 503 "Vault is sealed"
// until Unseal; the data stays.
func (d *Durable) Seal(ctx context.Context) error {
	cl, err := d.adminClient(d.Token)
	if err != nil {
		return err
	}
	if err := cl.Sys().SealWithContext(ctx); err != nil {
		return fmt.Errorf("vaulttest: seal: %w", err)
	}
	return nil
}

// Unseal unseals the server with its key and waits until it serves
// requests again.
func (d *Durable) Unseal(ctx context.Context) error {
	cl, err := d.adminClient("")
	if err != nil {
		return err
	}
	st, err := cl.Sys().UnsealWithContext(ctx, d.UnsealKey)
	if err != nil {
		return fmt.Errorf("vaulttest: unseal: %w", err)
	}
	if st.Sealed {
		return errors.New("vaulttest: unseal: still sealed after the only key share")
	}
	return d.waitActive(ctx, 60*time.Second)
}

// Down stops the container, as a crash or a shutdown of the server would:
// requests through Addr then fail to connect. The data stays; Up brings
// the server back.
func (d *Durable) Down(ctx context.Context) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	timeout := 10 * time.Second
	if err := c.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("vaulttest: stop Vault container: %w", err)
	}
	return nil
}

// Up starts the container that Down stopped, points the proxy at its new
// port, unseals the server and waits until it serves requests. Addr does
// not change.
func (d *Durable) Up(ctx context.Context) error {
	c, err := d.container()
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("vaulttest: start Vault container: %w", err)
	}
	if err := d.locate(ctx); err != nil {
		return fmt.Errorf("vaulttest: locate Vault container: %w", err)
	}
	if err := d.waitAnswer(ctx, 60*time.Second); err != nil {
		return fmt.Errorf("vaulttest: %w", err)
	}
	return d.Unseal(ctx)
}

// Restart stops and starts the container (Down, then Up): the server comes
// back sealed, is unsealed, and holds the same data and root token.
func (d *Durable) Restart(ctx context.Context) error {
	if err := d.Down(ctx); err != nil {
		return err
	}
	return d.Up(ctx)
}

// Stop removes the container and its data, and closes the proxy.
func (d *Durable) Stop(ctx context.Context) error {
	d.mu.Lock()
	c := d.c
	d.c = nil
	d.mu.Unlock()
	var err error
	if d.Proxy != nil {
		err = d.Proxy.Close()
	}
	if c != nil {
		err = errors.Join(err, c.Terminate(ctx))
	}
	return err
}
