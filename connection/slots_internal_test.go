package connection

import (
	"context"
	"errors"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Do runs at most maxInFlight requests at once; the others wait in Do
// (not in the HTTP transport, whose queue of waiting requests keeps them
// all after they are served), and a waiting call ends with its context.
func TestDoBoundsRequestsInFlight(t *testing.T) {
	c, err := New(context.Background(), Config{Address: "http://127.0.0.1:1", Token: &Token{Token: Credential{Value: "t"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var now, most atomic.Int32
	release := make(chan struct{})
	fn := func(*api.Client) error {
		n := now.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		now.Add(-1)
		return nil
	}
	var wg gosync.WaitGroup
	for range 3 * maxInFlight {
		wg.Go(func() {
			if err := c.Do(context.Background(), "read", "secret/data/x", "read", fn); err != nil {
				t.Error(err)
			}
		})
	}
	for now.Load() < maxInFlight {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ran := func(*api.Client) error { return nil }
	if err := c.Do(ctx, "read", "secret/data/y", "read", ran); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do waiting for a free slot until its context ended: %v, want context.DeadlineExceeded", err)
	}
	close(release)
	wg.Wait()
	if m := most.Load(); m != maxInFlight {
		t.Errorf("%d requests in flight at once, want %d", m, maxInFlight)
	}
}
