package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/sync"
)

// oneSync returns a generation of one push sync, "s", from src to dst.
func oneSync(t *testing.T, src destination.Reader, dst destination.Destination) *generation {
	t.Helper()
	s, err := sync.New(sync.Config{Name: "s", Source: src, Destination: dst, AutoSync: sync.AutoSync{Disabled: true}}) // manual
	if err != nil {
		t.Fatal(err)
	}
	return &generation{syncs: map[string]*managed{"s": {cfg: &SyncConfig{Name: "s"}, syncer: s}}, names: []string{"s"}}
}

// TestOnceFailsWhenAKeyFailed: a key whose write failed makes -once exit 1,
// also when the round itself returned no error (as the engine did for a
// key whose write hit the client's own timeout).
func TestOnceFailsWhenAKeyFailed(t *testing.T) {
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
		if c.Key == "B" {
			return fmt.Errorf("vault: write secret/B: %w", context.DeadlineExceeded)
		}
		return nil
	}})
	g := oneSync(t, memory.New(map[string]string{"A": "1", "B": "2"}), dst)
	rep, err := g.syncs["s"].syncer.Run(context.Background())
	if rep == nil || rep.Totals.Failed != 1 {
		t.Fatalf("the round = %v, %v: want B failed", rep, err)
	}
	t.Logf("the round returned %v with %d keys failed", err, rep.Totals.Failed)

	var out bytes.Buffer
	if code := runOnce(context.Background(), g, false, &out, io.Discard); code != 1 || !strings.Contains(out.String(), "FAILED: ") {
		t.Fatalf("-once with a failed key = %d, want 1:\n%s", code, out.String())
	}
	if strings.Count(out.String(), "FAILED: ") != 1 {
		t.Fatalf("-once says FAILED more than once for one sync:\n%s", out.String())
	}
}

// TestOnceFailsWhenTheDestinationRefusesAKey runs syncd -once on a sync
// whose destination, a dotenv file, cannot hold the rendered key.
func TestOnceFailsWhenTheDestinationRefusesAKey(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, strings.Replace(dotenvConfig(dir, "push"), `mode = "push"`, "mode = \"push\"\n  key_schema = \"prod/{{secretKey}}\"", 1))
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	code, out, errb := runNoPanic(t, context.Background(), "-config", cfgPath, "-once")
	if code != 1 || !strings.Contains(out, "prod/A") || !strings.Contains(out, "FAILED: ") {
		t.Fatalf("-once = %d, want 1 and the refused key:\n%s\n%s", code, out, errb)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAILED: ") && strings.Contains(l, "errors occurred:") {
			t.Fatalf("FAILED line is not readable: %q", l)
		}
	}
}
