package vaultkv_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// floorWorkers is how many requests the floor keeps in flight: more than
// the TCP connections (64, as a connection keeps), so that each of them
// always has a request waiting.
const floorWorkers = 256

// firstRoundFloor measures how fast Vault at addr serves the requests of
// n secret-path syncs' first rounds, with no engine in the way: for each
// of n fresh secrets of a new mount, one read (which finds nothing) and
// one check-and-set write that creates it, over at most 64 TCP
// connections, from a bare HTTP client. It returns the time from the
// first request to the last answer: what the first round of n syncs
// cannot beat on this host.
func firstRoundFloor(b *testing.B, srv *vaulttest.Server, addr string, n int) time.Duration {
	mount := srv.NewMount(b)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 64
	tr.MaxConnsPerHost = 64
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	do := func(ctx context.Context, method, path string, body []byte, want ...int) error {
		req, err := http.NewRequestWithContext(ctx, method, addr+"/v1/"+mount+"/data/"+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("X-Vault-Token", srv.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		for _, w := range want {
			if resp.StatusCode == w {
				return nil
			}
		}
		return fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
	}
	ctx := context.Background()
	next := make(chan int)
	errs := make(chan error, floorWorkers)
	var wg gosync.WaitGroup
	start := time.Now()
	for range floorWorkers {
		wg.Go(func() {
			for i := range next {
				p := fmt.Sprintf("floor/%d", i)
				if err := do(ctx, http.MethodGet, p, nil, http.StatusNotFound); err != nil {
					errs <- err
					return
				}
				body := fmt.Appendf(nil, `{"data":{"A":"a%d","B":"b","C":"c"},"options":{"cas":0}}`, i)
				if err := do(ctx, http.MethodPost, p, body, http.StatusOK); err != nil {
					errs <- err
					return
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			b.Fatalf("first-round floor: %v", err)
			break feed
		}
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	select {
	case err := <-errs:
		b.Fatalf("first-round floor: %v", err)
	default:
	}
	return took
}
