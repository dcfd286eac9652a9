package vaultkv_test

import (
	"context"
	"fmt"
	"path"
	gosync "sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

const benchKeys = 1000

// benchSeq makes every run's path fresh, so that every key is created.
var benchSeq atomic.Int64

// benchConcurrency is the sync's default Concurrency, used by both sides.
const benchConcurrency = sync.DefaultConcurrency

// BenchmarkPush1000 pushes 1,000 new keys to Vault with a sync, and does
// the same writes directly with api.Client at the same concurrency, in each
// layout. For secret-path, direct is one blind cas=0 write, and
// direct-read-cas reads the secret's version first, as secretsync does.
// Compare keys/s of the secretsync and direct sub-benchmarks; req/key
// counts every request that reached Vault, reads included.
func BenchmarkPush1000(b *testing.B) {
	srv := vaulttest.Get(b)
	// Both contestants go through the proxy, so that they pay the same
	// extra hop and req/key counts every request.
	proxy := srv.RequestProxy(b)
	for _, layout := range layouts {
		mount := srv.NewMount(b)
		values := make(map[string]string, benchKeys)
		for i := range benchKeys {
			values[fmt.Sprintf("KEY_%04d", i)] = fmt.Sprintf("value-%04d-%s", i, "0123456789abcdef0123456789abcdef")
		}
		b.Run(layout.String()+"/secretsync", func(b *testing.B) {
			conn, err := connection.New(context.Background(), connection.Config{
				Address: proxy.URL(), Token: &connection.Token{Token: connection.Credential{Value: srv.Token}},
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(context.Background())
			var requests int64
			for range b.N {
				b.StopTimer()
				kv, err := vaultkv.New(context.Background(), conn, &vaultkv.Options{Mount: mount, Path: fmt.Sprintf("ss-%d", benchSeq.Add(1)), Layout: layout})
				if err != nil {
					b.Fatal(err)
				}
				s, err := sync.New(sync.Config{Name: "bench", Source: memory.New(values), Destination: kv, Store: state.NewMemory(), Concurrency: benchConcurrency})
				if err != nil {
					b.Fatal(err)
				}
				before := int64(proxy.Total())
				b.StartTimer()
				rep, err := s.Run(context.Background())
				b.StopTimer()
				requests += int64(proxy.Total()) - before
				if err != nil || rep.Totals.Created != benchKeys {
					b.Fatalf("Run: %v, %v", rep, err)
				}
				b.StartTimer()
			}
			report(b, requests)
		})
		b.Run(layout.String()+"/direct", func(b *testing.B) {
			c := directClient(b, proxy.URL(), srv.Token)
			var requests int64
			for range b.N {
				prefix := fmt.Sprintf("direct-%d", benchSeq.Add(1))
				before := int64(proxy.Total())
				if layout == vaultkv.SecretPath {
					if _, err := c.Logical().WriteWithContext(context.Background(), path.Join(mount, "data", prefix),
						map[string]any{"data": asData(values), "options": map[string]any{"cas": 0}}); err != nil {
						b.Fatal(err)
					}
				} else {
					directKeys(b, c, mount, prefix, values)
				}
				requests += int64(proxy.Total()) - before
			}
			report(b, requests)
		})
		if layout != vaultkv.SecretPath {
			continue
		}
		// What a writer that guards against lost updates must do when it
		// does not know that the secret is absent: read its version, then
		// write with cas set to it. secretsync does this too.
		b.Run(layout.String()+"/direct-read-cas", func(b *testing.B) {
			c := directClient(b, proxy.URL(), srv.Token)
			ctx := context.Background()
			var requests int64
			for range b.N {
				p := path.Join(mount, "data", fmt.Sprintf("direct-%d", benchSeq.Add(1)))
				before := int64(proxy.Total())
				sec, err := c.Logical().ReadWithContext(ctx, p)
				if err != nil {
					b.Fatal(err)
				}
				if sec != nil {
					b.Fatalf("%s exists", p) // every run's path is new: its version is 0
				}
				if _, err := c.Logical().WriteWithContext(ctx, p, map[string]any{"data": asData(values), "options": map[string]any{"cas": 0}}); err != nil {
					b.Fatal(err)
				}
				requests += int64(proxy.Total()) - before
			}
			report(b, requests)
		})
	}
}

// directKeys writes what the secret-key layout writes for a new key (the
// ownership marker, then the value with cas=0), from benchConcurrency
// goroutines.
func directKeys(b *testing.B, c *api.Client, mount, prefix string, values map[string]string) {
	jobs := make(chan string)
	var wg gosync.WaitGroup
	var failed atomic.Value
	for range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				ctx := context.Background()
				if _, err := c.Logical().WriteWithContext(ctx, path.Join(mount, "metadata", prefix, k),
					map[string]any{"custom_metadata": map[string]any{vaultkv.OwnerKey: "bench"}}); err != nil {
					failed.Store(err)
				}
				if _, err := c.Logical().WriteWithContext(ctx, path.Join(mount, "data", prefix, k),
					map[string]any{"data": map[string]any{"value": values[k]}, "options": map[string]any{"cas": 0}}); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for k := range values {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// asData is values as the data of a KV v2 write.
func asData(values map[string]string) map[string]any {
	data := make(map[string]any, len(values))
	for k, v := range values {
		data[k] = v
	}
	return data
}

// directClient is the api.Client of the direct contestants.
func directClient(b *testing.B, addr, token string) *api.Client {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	c, err := api.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func report(b *testing.B, requests int64) {
	b.ReportMetric(float64(benchKeys*b.N)/b.Elapsed().Seconds(), "keys/s")
	b.ReportMetric(float64(requests)/float64(benchKeys*b.N), "req/key")
}
