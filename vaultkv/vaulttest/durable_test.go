package vaulttest_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

// orphanToken returns a new orphan token with the policies (and not the
// default one) that lives an hour.
func orphanToken(t *testing.T, srv *vaulttest.Server, policies ...string) string {
	t.Helper()
	sec, err := srv.Client(t).Auth().Token().CreateOrphanWithContext(context.Background(),
		&api.TokenCreateRequest{Policies: policies, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Auth.ClientToken
}

func put(t *testing.T, c *api.Client, mount, p string, data map[string]any) {
	t.Helper()
	if _, err := c.KVv2(mount).Put(context.Background(), p, data); err != nil {
		t.Fatalf("put %s/%s: %v", mount, p, err)
	}
}

func value(t *testing.T, c *api.Client, mount, p string) any {
	t.Helper()
	s, err := c.KVv2(mount).Get(context.Background(), p)
	if err != nil {
		t.Fatalf("get %s/%s: %v", mount, p, err)
	}
	return s.Data["v"]
}

func TestDurableRestartKeepsData(t *testing.T) {
	d := vaulttest.NewDurable(t)
	ctx := context.Background()
	mount := d.NewMount(t)
	c := d.Client(t)
	put(t, c, mount, "app", map[string]any{"v": "before"})
	addr, direct := d.Addr, d.DirectAddr()

	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if d.Addr != addr {
		t.Fatalf("Addr changed across a restart: %s, then %s", addr, d.Addr)
	}
	t.Logf("container address before the restart %s, after %s", direct, d.DirectAddr())
	// The same client (same address, same root token) reads what was
	// written before the restart, and writes again.
	if v := value(t, c, mount, "app"); v != "before" {
		t.Fatalf("after restart: %v, want %q", v, "before")
	}
	put(t, c, mount, "app", map[string]any{"v": "after"})
	if v := value(t, d.Direct().Client(t), mount, "app"); v != "after" {
		t.Fatalf("direct read after restart: %v", v)
	}
}

func TestDurableDownUp(t *testing.T) {
	d := vaulttest.NewDurable(t)
	ctx := context.Background()
	mount := d.NewMount(t)
	put(t, d.Client(t), mount, "app", map[string]any{"v": "kept"})
	if err := d.Down(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := connection.New(ctx, connection.Config{Address: d.Addr, MaxRetries: -1,
		Token: &connection.Token{Token: connection.Credential{Value: d.Token}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = conn.Do(ctx, "read", mount+"/data/app", "read", func(c *api.Client) error {
		_, err := c.Logical().ReadWithContext(ctx, mount+"/data/app")
		return err
	})
	if !errors.Is(err, connection.ErrUnreachable) {
		t.Fatalf("read while down: %v, want ErrUnreachable", err)
	}
	if err := d.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if v := value(t, d.Client(t), mount, "app"); v != "kept" {
		t.Fatalf("after Up: %v", v)
	}
}

func TestDurableSealUnseal(t *testing.T) {
	d := vaulttest.NewDurable(t)
	ctx := context.Background()
	mount := d.NewMount(t)
	c := d.Client(t)
	c.SetMaxRetries(0)
	put(t, c, mount, "app", map[string]any{"v": "sealed in"})
	if err := d.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.KVv2(mount).Get(ctx, "app")
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable || !strings.Contains(strings.Join(re.Errors, " "), "sealed") {
		t.Fatalf("read while sealed: %v, want 503 Vault is sealed", err)
	}
	if err := d.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	if v := value(t, c, mount, "app"); v != "sealed in" {
		t.Fatalf("after unseal: %v", v)
	}
}

func TestDurableFreeze(t *testing.T) {
	d := vaulttest.NewDurable(t)
	ctx := context.Background()
	mount := d.NewMount(t)
	put(t, d.Client(t), mount, "app", map[string]any{"v": "1"})

	// A raw client, so that the test sees the timeout itself, however the
	// connection package classifies it.
	fast := d.Client(t)
	fast.SetMaxRetries(0)
	fast.SetClientTimeout(time.Second)
	write := func(v string) error {
		_, err := fast.KVv2(mount).Put(ctx, "app", map[string]any{"v": v})
		return err
	}

	d.Proxy.Freeze()
	// A request through the frozen proxy times out on the client's
	// timeout ...
	if err := write("2"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write to a frozen server: %v, want the client's timeout", err)
	}
	// ... while the server itself is fine, as seen from behind the proxy.
	behind := d.Direct().Client(t)
	if _, err := behind.Sys().HealthWithContext(ctx); err != nil {
		t.Fatalf("direct health while frozen: %v", err)
	}
	// A request with a longer timeout, made while frozen, finishes after
	// the thaw.
	slow := d.Client(t)
	slow.SetClientTimeout(time.Minute)
	done := make(chan error, 1)
	go func() {
		_, err := slow.KVv2(mount).Put(ctx, "other", map[string]any{"v": "x"})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a write finished on a frozen server: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	d.Proxy.Thaw()
	if err := <-done; err != nil {
		t.Fatalf("write after thaw: %v", err)
	}
	// The write that timed out was held and delivered on the thaw with
	// its client's close right behind it, as a server resumed after
	// SIGSTOP would read them: Vault may or may not apply it.
	if v := value(t, behind, mount, "app"); v != "1" && v != "2" {
		t.Fatalf("after thaw: %v, want 1 or 2", v)
	}
	if err := write("3"); err != nil {
		t.Fatalf("write after thaw: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	c := srv.Client(t)
	c.SetMaxRetries(0)
	q := srv.RateLimit(t, mount+"/", &vaulttest.RateLimitOptions{Rate: 1, Interval: time.Hour})
	q.Exhaust(t)
	_, err := c.KVv2(mount).Put(context.Background(), "app", map[string]any{"v": "1"})
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("write over the quota: %v, want 429", err)
	}
	q.Remove(t)
	put(t, c, mount, "app", map[string]any{"v": "1"})
}

func TestRevokeToken(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	pol := srv.Policy(t, `path "`+mount+`/data/*" { capabilities = ["create", "read", "update"] }`)
	token := orphanToken(t, srv, pol)
	c := srv.Client(t)
	c.SetToken(token)
	put(t, c, mount, "app", map[string]any{"v": "1"})
	// Without the default policy the token cannot look itself up.
	look, err := srv.Client(t).Auth().Token().Lookup(token)
	if err != nil {
		t.Fatal(err)
	}
	if pols, _ := look.TokenPolicies(); len(pols) != 1 || pols[0] != pol {
		t.Errorf("token policies %v, want only %s", pols, pol)
	}
	if ttl, _ := look.TokenTTL(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("token TTL %v, want at most an hour", ttl)
	}
	srv.RevokeToken(t, token)
	_, err = c.KVv2(mount).Put(context.Background(), "app", map[string]any{"v": "2"})
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("write with a revoked token: %v, want 403", err)
	}
}

func TestRoleRevokeTokens(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	role := srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{"default"}})
	conn, err := connection.New(ctx, role.Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	c, err := conn.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	if n := role.RevokeTokens(t); n != 1 {
		t.Fatalf("revoked %d tokens, want 1", n)
	}
	if _, err := c.Auth().Token().LookupSelfWithContext(ctx); err == nil {
		t.Fatal("the role's token still works after RevokeTokens")
	}
}

func TestTransitKey(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	k := srv.NewTransitKey(t)
	// The policy of a Transit sealer, from vaultkv.Policy.
	policy, err := vaultkv.Policy(vaultkv.PolicySpec{Transit: []vaultkv.TransitAccess{{Options: vaultkv.TransitOptions{Mount: k.Mount, Key: k.Name}, Rewrap: true}}})
	if err != nil {
		t.Fatal(err)
	}
	token := orphanToken(t, srv, srv.Policy(t, policy))
	c := srv.Client(t)
	c.SetToken(token)
	const plain = "aGVsbG8=" // base64 of "hello"
	enc, err := c.Logical().WriteWithContext(ctx, k.Mount+"/encrypt/"+k.Name, map[string]any{"plaintext": plain})
	if err != nil {
		t.Fatal(err)
	}
	ct := enc.Data["ciphertext"].(string)
	if !strings.HasPrefix(ct, "vault:v1:") {
		t.Fatalf("ciphertext %q, want key version 1", ct)
	}
	k.Rotate(t)
	rw, err := c.Logical().WriteWithContext(ctx, k.Mount+"/rewrap/"+k.Name, map[string]any{"ciphertext": ct})
	if err != nil {
		t.Fatal(err)
	}
	ct2 := rw.Data["ciphertext"].(string)
	if !strings.HasPrefix(ct2, "vault:v2:") {
		t.Fatalf("rewrapped %q, want key version 2", ct2)
	}
	dec, err := c.Logical().WriteWithContext(ctx, k.Mount+"/decrypt/"+k.Name, map[string]any{"ciphertext": ct2})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Data["plaintext"] != plain {
		t.Fatalf("decrypted %v", dec.Data["plaintext"])
	}
}
