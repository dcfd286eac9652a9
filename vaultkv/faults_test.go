package vaultkv_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// connThrough connects through p with token, retries and timeout (see
// connection.Config), closed when the test ends.
func connThrough(t testing.TB, p *vaulttest.RequestProxy, token string, retries int, timeout time.Duration) *connection.Conn {
	t.Helper()
	c, err := connection.New(context.Background(), connection.Config{
		Address: p.URL(), MaxRetries: retries, Timeout: timeout,
		Token: &connection.Token{Token: connection.Credential{Value: token}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// isDataWrite reports a write of a KV v2 secret's data under mount.
func isDataWrite(r *http.Request, mount string) bool {
	return (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.HasPrefix(r.URL.Path, "/v1/"+mount+"/data/")
}

func puts(n int, prefix string) []destination.Change {
	changes := make([]destination.Change, n)
	for i := range changes {
		changes[i] = destination.Change{Key: fmt.Sprintf("%s%03d", prefix, i), Value: fmt.Sprint("v", i)}
	}
	return changes
}

// A round cut short keeps the results of the writes that reached Vault:
// one result per change, nil for each one applied (issue #10, defect 3).
func TestApplyCancelledKeepsResults(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	p := srv.RequestProxy(t)
	kv, err := vaultkv.New(context.Background(), connThrough(t, p, srv.Token, 0, 0), &vaultkv.Options{Mount: mount, Path: "team", Layout: vaultkv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var writes atomic.Int64
	p.OnAnswered(func(r *http.Request) {
		if isDataWrite(r, mount) && writes.Add(1) == 3 {
			cancel() // the caller gives up after the third write
		}
	})
	changes := puts(10, "K")
	errs, err := kv.Apply(ctx, changes)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply = %v, want context.Canceled", err)
	}
	if len(errs) != len(changes) {
		t.Fatalf("Apply returned %d results for %d changes: the writes that reached Vault are lost", len(errs), len(changes))
	}
	b := newBackdoor(t, srv, mount, "team", "value")
	applied := 0
	for i, c := range changes {
		v, ok, gerr := b.getKey(context.Background(), c.Key)
		if gerr != nil {
			t.Fatal(gerr)
		}
		switch {
		case errs[i] == nil:
			applied++
			if !ok || v != c.Value {
				t.Errorf("%s: result nil, but Vault does not hold it", c.Key)
			}
		case !errors.Is(errs[i], context.Canceled):
			t.Errorf("%s: %v, want context.Canceled", c.Key, errs[i])
		case i > 3 && ok:
			t.Errorf("%s was written after the cancellation", c.Key)
		}
	}
	if applied < 2 {
		t.Fatalf("%d changes reported applied, want at least the 2 written before the cancellation", applied)
	}
}

// A single secret-path write whose outcome is unknown is never reported
// as nil, nor left without a result.
func TestApplyPathCancelledWrite(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	p := srv.RequestProxy(t)
	kv, err := vaultkv.New(context.Background(), connThrough(t, p, srv.Token, 0, 0), &vaultkv.Options{Mount: mount, Path: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.List(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The write reaches Vault; its answer is held until the caller gives up.
	p.Intercept(func(r *http.Request) vaulttest.Verdict {
		if isDataWrite(r, mount) {
			time.AfterFunc(100*time.Millisecond, cancel)
			return vaulttest.LoseAnswer
		}
		return vaulttest.Forward
	})
	changes := puts(3, "K")
	errs, err := kv.Apply(ctx, changes)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply = %v, want context.Canceled", err)
	}
	if len(errs) != len(changes) {
		t.Fatalf("Apply returned %d results for %d changes", len(errs), len(changes))
	}
	for i, e := range errs {
		if !errors.Is(e, context.Canceled) || !strings.Contains(e.Error(), "may have been applied") {
			t.Errorf("change %d: %v, want context.Canceled saying the write may have been applied", i, e)
		}
	}
	if v, ok, _ := newBackdoor(t, srv, mount, "", "").getField(context.Background(), "app", "K000"); !ok || v != "v0" {
		t.Fatalf("the held write did not land (%q, %v): the test proves nothing", v, ok)
	}
}

// wantUnavailable checks that err matches destination.ErrUnavailable and
// also the connection's own sentinel (or status) that says why.
func wantUnavailable(t *testing.T, what string, err error, why func(error) bool) {
	t.Helper()
	if !errors.Is(err, destination.ErrUnavailable) || !why(err) {
		t.Fatalf("%s = %v, want an error matching destination.ErrUnavailable and its cause", what, err)
	}
}

// An unreachable Vault stops a round at the first request: List and Apply
// fail with destination.ErrUnavailable, and the changes of the batch are
// not attempted one by one (issue #10, defect 9).
func TestUnavailableUnreachable(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	for _, layout := range layouts {
		t.Run(layout.String(), func(t *testing.T) {
			mount := srv.NewMount(t)
			p := srv.RequestProxy(t)
			kv, err := vaultkv.New(ctx, connThrough(t, p, srv.Token, 1, 0), &vaultkv.Options{Mount: mount, Path: "app", Layout: layout})
			if err != nil {
				t.Fatal(err)
			}
			p.Intercept(func(*http.Request) vaulttest.Verdict { return vaulttest.Drop })
			before := p.Total()
			unreachable := func(err error) bool { return errors.Is(err, connection.ErrUnreachable) }
			_, err = kv.List(ctx)
			wantUnavailable(t, "List", err, unreachable)
			changes := puts(50, "K")
			errs, err := kv.Apply(ctx, changes)
			wantUnavailable(t, "Apply", err, unreachable)
			if len(errs) != len(changes) {
				t.Fatalf("Apply returned %d results for %d changes", len(errs), len(changes))
			}
			for i, e := range errs {
				wantUnavailable(t, fmt.Sprint("change ", i), e, unreachable)
			}
			// One List and one change, each tried twice (one retry), and
			// net/http may resend a request once on a reused connection
			// that closed.
			if n := p.Total() - before; n > 8 {
				t.Fatalf("%d requests reached the dead link, want at most 8: the round did not stop (%v)", n, p.Log()[before:])
			}
		})
	}
}

// Listing stops at the first error that says Vault cannot serve, and
// cancels the reads in flight, instead of reading every key.
func TestListStopsWhenUnavailable(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	mount := srv.NewMount(t)
	c := srv.Client(t).KVv2(mount)
	const n = 200
	for i := range n {
		if _, err := c.Put(ctx, fmt.Sprintf("app/K%03d", i), map[string]any{"value": "v"}); err != nil {
			t.Fatal(err)
		}
	}
	p := srv.RequestProxy(t)
	kv, err := vaultkv.New(ctx, connThrough(t, p, srv.Token, -1, 0), &vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretKey, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	p.Intercept(func(r *http.Request) vaulttest.Verdict {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/data/") && reads.Add(1) > 10 {
			return vaulttest.Drop // the link dies after ten reads
		}
		return vaulttest.Forward
	})
	_, err = kv.List(ctx)
	// After the first failure, only the reads in flight may be tried,
	// each maybe resent once by net/http on its reused connection.
	if got := reads.Load(); got > 10+3*4 {
		t.Fatalf("%d reads of %d were attempted: listing did not stop at the first failure", got, n)
	}
	wantUnavailable(t, "List", err, func(err error) bool { return errors.Is(err, connection.ErrUnreachable) })
}

// A sealed Vault stops a round with destination.ErrUnavailable. The test
// seals a server of its own.
func TestUnavailableSealed(t *testing.T) {
	srv := vaulttest.StartOwn(t)
	ctx := context.Background()
	mount := srv.NewMount(t)
	conn, err := connection.New(ctx, connection.Config{Address: srv.Addr, MaxRetries: 1, Token: &connection.Token{Token: connection.Credential{Value: srv.Token}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kvs := map[vaultkv.Layout]*vaultkv.KV{}
	for _, layout := range layouts {
		if kvs[layout], err = vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: "app", Layout: layout}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Seal(t)
	sealed := func(err error) bool { return errors.Is(err, connection.ErrSealed) }
	for layout, kv := range kvs {
		_, err := kv.List(ctx)
		wantUnavailable(t, layout.String()+" List", err, sealed)
		changes := puts(20, "K")
		errs, err := kv.Apply(ctx, changes)
		wantUnavailable(t, layout.String()+" Apply", err, sealed)
		for i, e := range errs {
			wantUnavailable(t, fmt.Sprint(layout, " change ", i), e, sealed)
		}
	}
	// NewStore on conn would use the mount check that the KVs made
	// before the seal; a new connection checks the mount itself.
	fresh, err := connection.New(ctx, connection.Config{Address: srv.Addr, MaxRetries: 1, Token: &connection.Token{Token: connection.Credential{Value: srv.Token}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = vaultkv.NewStore(ctx, fresh, &vaultkv.StoreOptions{Mount: mount})
	wantUnavailable(t, "NewStore", err, sealed)
}

// A rate limit (429 after the connection's retries) stops a round.
func TestUnavailableRateLimited(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	mount := srv.NewMount(t)
	root := srv.Client(t)
	quota := "q-" + mount
	if _, err := root.Logical().WriteWithContext(ctx, "sys/quotas/rate-limit/"+quota, map[string]any{"path": mount + "/", "rate": 1, "interval": "10s"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = root.Logical().DeleteWithContext(context.Background(), "sys/quotas/rate-limit/"+quota) })
	p := srv.RequestProxy(t)
	kv, err := vaultkv.New(ctx, connThrough(t, p, srv.Token, -1, 0), &vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	changes := puts(50, "K")
	errs, err := kv.Apply(ctx, changes)
	limited := func(err error) bool { return connection.Status(err) == http.StatusTooManyRequests }
	wantUnavailable(t, "Apply", err, limited)
	if len(errs) != len(changes) {
		t.Fatalf("Apply returned %d results for %d changes", len(errs), len(changes))
	}
	for i, e := range errs[1:] {
		wantUnavailable(t, fmt.Sprint("change ", i+1), e, limited)
	}
	n := 0
	for _, r := range p.Log() {
		if strings.Contains("/"+r.Path, "/"+mount+"/") {
			n++
		}
	}
	if n > 3 {
		t.Fatalf("%d requests after the rate limit answered, want the round to stop", n)
	}
}

// The connection's own timeout, while the caller still waits, says that
// Vault does not answer: destination.ErrUnavailable, not the caller's
// cancellation.
func TestUnavailableClientTimeout(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	mount := srv.NewMount(t)
	p := srv.RequestProxy(t)
	kv, err := vaultkv.New(ctx, connThrough(t, p, srv.Token, -1, 300*time.Millisecond), &vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	p.Intercept(func(*http.Request) vaulttest.Verdict { return vaulttest.Stall })
	timedOut := func(err error) bool {
		return errors.Is(err, connection.ErrUnreachable) && !errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "no answer within")
	}
	_, err = kv.List(ctx)
	wantUnavailable(t, "List", err, timedOut)
	errs, err := kv.Apply(ctx, puts(5, "K"))
	wantUnavailable(t, "Apply", err, timedOut)
	for i, e := range errs {
		wantUnavailable(t, fmt.Sprint("change ", i), e, timedOut)
	}
	if !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("Apply = %q, want it to say the connection timed out", err)
	}
}

// getField reads one field of the secret at p, out of band.
func (b *backdoor) getField(ctx context.Context, p, field string) (string, bool, error) {
	s, err := b.kv.Get(ctx, p)
	if err != nil {
		if isNotFound(err) {
			return "", false, nil
		}
		return "", false, err
	}
	v, ok := s.Data[field].(string)
	return v, ok, nil
}
