package sync_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

func benchKeys(n int) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("SECRET_%06d", i)] = fmt.Sprintf("value-%06d-%032d", i, i)
	}
	return m
}

// BenchmarkRun100k measures full rounds over 100,000 keys on in-memory
// sides: a first round that creates every key, an idle round, and a round
// in which 10% of the keys changed.
func BenchmarkRun100k(b *testing.B) {
	const n = 100_000
	keys := benchKeys(n)
	ctx := context.Background()

	b.Run("create", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s, err := sync.New(sync.Config{Name: "bench", Source: memory.New(keys), Destination: memory.New(nil), KeySchema: "APP_{{secretKey}}"})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			rep, err := s.Run(ctx)
			if err != nil || rep.Totals.Created != n {
				b.Fatalf("%v %v", rep, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
	})

	b.Run("idle", func(b *testing.B) {
		s, err := sync.New(sync.Config{Name: "bench", Source: memory.New(keys), Destination: memory.New(nil), Store: state.NewMemory(), KeySchema: "APP_{{secretKey}}"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Run(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rep, err := s.Run(ctx)
			if err != nil || rep.Totals.Unchanged != n {
				b.Fatalf("%v %v", rep, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
	})

	b.Run("update10pct", func(b *testing.B) {
		src := memory.New(keys)
		s, err := sync.New(sync.Config{Name: "bench", Source: src, Destination: memory.New(nil), Mode: sync.Push, KeySchema: "APP_{{secretKey}}"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Run(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			for j := 0; j < n/10; j++ {
				src.Set(fmt.Sprintf("SECRET_%06d", j), fmt.Sprintf("round-%d", i))
			}
			b.StartTimer()
			rep, err := s.Run(ctx)
			if err != nil || rep.Totals.Updated != n/10 {
				b.Fatalf("%v %v", rep, err)
			}
		}
	})
}
