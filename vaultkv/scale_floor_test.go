package vaultkv_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	gosync "sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
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
	read := func(ctx context.Context, p string) error {
		return do(ctx, http.MethodGet, p, nil, http.StatusNotFound)
	}
	write := func(ctx context.Context, p string, i int) error {
		body := fmt.Appendf(nil, `{"data":{"A":"a%d","B":"b","C":"c"},"options":{"cas":0}}`, i)
		return do(ctx, http.MethodPost, p, body, http.StatusOK)
	}
	return runFloor(b, n, read, write)
}

// firstRoundFloorAPI is firstRoundFloor with the client the syncs use: a
// connection.Conn (which keeps at most 64 TCP connections too) and the
// Vault API package's reads and writes, without vaultkv or the engine.
func firstRoundFloorAPI(b *testing.B, srv *vaulttest.Server, addr string, n int) time.Duration {
	mount := srv.NewMount(b)
	conn, err := connection.New(context.Background(), connection.Config{
		Address: addr, Token: &connection.Token{Token: connection.Credential{Value: srv.Token}},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	read := func(ctx context.Context, p string) error {
		p = mount + "/data/" + p
		return conn.Do(ctx, "read", p, "read", func(c *api.Client) error {
			sec, err := c.Logical().ReadWithContext(ctx, p)
			if err == nil && sec != nil {
				err = fmt.Errorf("read %s: found a secret, want none", p)
			}
			return err
		})
	}
	write := func(ctx context.Context, p string, i int) error {
		p = mount + "/data/" + p
		return conn.Do(ctx, "write", p, "create", func(c *api.Client) error {
			_, err := c.Logical().WriteWithContext(ctx, p, map[string]any{
				"data": map[string]any{"A": "a" + strconv.Itoa(i), "B": "b", "C": "c"}, "options": map[string]any{"cas": 0},
			})
			return err
		})
	}
	return runFloor(b, n, read, write)
}

// runFloor reads and then writes each of n secrets floor/<i>, from
// floorWorkers goroutines, and returns how long it took.
func runFloor(b *testing.B, n int, read func(context.Context, string) error, write func(context.Context, string, int) error) time.Duration {
	ctx := context.Background()
	next := make(chan int)
	errs := make(chan error, floorWorkers)
	var wg gosync.WaitGroup
	start := time.Now()
	for range floorWorkers {
		wg.Go(func() {
			for i := range next {
				p := fmt.Sprintf("floor/%d", i)
				if err := read(ctx, p); err != nil {
					errs <- err
					return
				}
				if err := write(ctx, p, i); err != nil {
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
