package vaultkv_test

import (
	"context"
	"errors"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// proxiedConn is a connection to srv through p.
func proxiedConn(t *testing.T, srv *vaulttest.Server, p *vaulttest.RequestProxy) *connection.Conn {
	t.Helper()
	conn, err := connection.New(context.Background(), connection.Config{
		Address: p.URL(), Token: &connection.Token{Token: connection.Credential{Value: srv.Token}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// The KVs and stores made on one connection check their mount once, even
// when made at the same moment; another connection checks it again. A
// mount that is not there is asked about again each time: it may be
// created in a moment.
func TestMountCheckedOncePerConnection(t *testing.T) {
	srv := vaulttest.Get(t)
	p := srv.RequestProxy(t)
	mount := srv.NewMount(t)
	at := "sys/internal/ui/mounts/" + mount
	conn := proxiedConn(t, srv, p)
	var wg gosync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			if i%2 == 0 {
				_, errs[i] = vaultkv.New(context.Background(), conn, &vaultkv.Options{Mount: mount, Path: "app"})
			} else {
				_, errs[i] = vaultkv.NewStore(context.Background(), conn, &vaultkv.StoreOptions{Mount: mount})
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := p.Count(at); n != 1 {
		t.Errorf("20 KVs and stores on one connection read %s %d times, want 1", at, n)
	}
	if _, err := vaultkv.New(context.Background(), proxiedConn(t, srv, p), &vaultkv.Options{Mount: mount, Path: "app"}); err != nil {
		t.Fatal(err)
	}
	if n := p.Count(at); n != 2 {
		t.Errorf("a second connection: %s read %d times in all, want 2", at, n)
	}

	absent := mount + "-absent"
	for range 2 {
		if _, err := vaultkv.New(context.Background(), conn, &vaultkv.Options{Mount: absent, Path: "app"}); err == nil {
			t.Fatal("New on a mount that does not exist succeeded")
		}
	}
	if n := p.Count("sys/internal/ui/mounts/" + absent); n != 2 {
		t.Errorf("two News on an absent mount read it %d times, want 2 (an absent mount is not remembered)", n)
	}
}

// A change made between the KV's last read and Notify's first poll is
// announced: the first poll compares with what the KV last read, not only
// with later polls (SecretPath, KV v2).
func TestNotifyAnnouncesChangeBeforeFirstPoll(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	conn := srv.Conn(t)
	c := srv.Client(t)
	ctx := context.Background()
	if _, err := c.KVv2(mount).Put(ctx, "app", map[string]any{"A": "1"}); err != nil {
		t.Fatal(err)
	}
	kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: "app", PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.List(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2(mount).Put(ctx, "app", map[string]any{"A": "2"}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-kv.Notify(wctx):
	case <-time.After(30 * time.Second):
		t.Fatal("the change made before the first poll was never announced")
	}
}

// A KV's own write is no change to announce: the poll that finds the
// version the KV wrote announces nothing (a watching sync would otherwise
// run one more round after each of its writes), while a write by another
// client that follows is announced (SecretPath, KV v2).
func TestNotifyIgnoresOwnWrite(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	conn := srv.Conn(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const interval = 50 * time.Millisecond
	kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: "app", PollInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	changes := kv.Notify(ctx)
	time.Sleep(3 * interval) // the first polls set the reference: no secret
	if _, err := kv.List(ctx); err != nil {
		t.Fatal(err)
	}
	if errs, err := kv.Apply(ctx, []destination.Change{{Key: "A", Value: "1"}}); err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	select {
	case <-changes:
		t.Fatal("the KV's own write was announced as a change")
	case <-time.After(10 * interval):
	}
	if _, err := srv.Client(t).KVv2(mount).Put(ctx, "app", map[string]any{"A": "2"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(30 * time.Second):
		t.Fatal("another client's write was never announced")
	}
}

// A secret that a KV saw and then finds gone drops the connection's kept
// answer for its mount: after the mount is disabled, a KV whose secret
// vanished is followed by a New that checks the mount again and fails.
func TestMountCheckedAgainAfterSecretVanished(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	conn := srv.Conn(t)
	ctx := context.Background()
	c := srv.Client(t)
	if _, err := c.KVv2(mount).Put(ctx, "app", map[string]any{"A": "1"}); err != nil {
		t.Fatal(err)
	}
	kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kv.List(ctx); err != nil || len(got) != 1 {
		t.Fatalf("List = %v, %v; want one key", got, err)
	}
	if err := c.Sys().UnmountWithContext(ctx, mount); err != nil {
		t.Fatal(err)
	}
	if got, err := kv.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("List after the mount was disabled = %v, %v; want nothing", got, err)
	}
	if _, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: "app"}); err == nil {
		t.Fatal("New after the mount was disabled and read empty succeeded")
	}
}
