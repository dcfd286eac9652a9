package vaultkv_test

import (
	"context"
	"fmt"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// BenchmarkAutoSyncLatency measures, for each layout, the time from a change
// at a source that announces its changes to the new value being readable in
// Vault, with Watch and the default AutoSync (200 ms debounce), over 200
// changes per run. It reports p50 and p99 in milliseconds.
func BenchmarkAutoSyncLatency(b *testing.B) {
	srv := vaulttest.Get(b)
	for _, layout := range layouts {
		b.Run(layout.String(), func(b *testing.B) {
			mount := srv.NewMount(b)
			kv, err := vaultkv.New(context.Background(), srv.Conn(b), &vaultkv.Options{Mount: mount, Path: "app", Layout: layout, PollInterval: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			keys := map[string]string{}
			for i := range 50 {
				keys[fmt.Sprintf("K%02d", i)] = "0"
			}
			host := memory.New(keys)
			s, err := sync.New(sync.Config{Name: "latency", Source: host, Destination: kv, Store: state.NewMemory()})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Watch(ctx) }()
			defer func() { cancel(); <-done }()

			c := srv.Client(b).KVv2(mount)
			read := func(k string) string {
				p, field := path.Join("app", k), "value"
				if layout == vaultkv.SecretPath {
					p, field = "app", k
				}
				sec, err := c.Get(context.Background(), p)
				if err != nil || sec == nil {
					return ""
				}
				return fmt.Sprint(sec.Data[field])
			}
			for read("K49") != "0" {
				time.Sleep(10 * time.Millisecond)
			}
			var lat []time.Duration
			b.ResetTimer()
			for n := range b.N {
				for i := range 200 {
					k, v := fmt.Sprintf("K%02d", i%50), fmt.Sprintf("v%d-%d", n, i)
					start := time.Now()
					host.Set(k, v)
					for read(k) != v {
						if time.Since(start) > 30*time.Second {
							b.Fatalf("%s never reached Vault", k)
						}
						time.Sleep(2 * time.Millisecond)
					}
					lat = append(lat, time.Since(start))
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 {
				return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}
