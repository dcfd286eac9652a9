package sync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// TestCanaryNeverLeaks plants a secret value, runs every operation,
// including failures, and checks that the value appears in no log line, error
// string, report, audit event or store file.
func TestCanaryNeverLeaks(t *testing.T) {
	const canary = "CANARY-7f3a9c1e-do-not-leak"
	ctx := context.Background()
	dir := t.TempDir()
	store, err := state.OpenFile(filepath.Join(dir, "state.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs, jsonl bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec := audit.NewRecorder()
	auditor := audit.Fanout(rec, audit.NewJSONLines(&jsonl), audit.NewSlog(logger, nil))

	failKey := ""
	dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error {
		if c.Key == failKey {
			return errors.New("injected failure")
		}
		return nil
	}})
	src := memory.New(map[string]string{"TOKEN": canary, "PLAIN": "p"})
	s, err := sync.New(sync.Config{
		Name: "canary", Source: src, Destination: dst, Mode: sync.Bidirectional,
		Store: store, Auditor: auditor, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}

	var texts []string
	note := func(rep *sync.Report, err error) {
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		}
		if rep != nil {
			var b bytes.Buffer
			_ = rep.WriteTable(&b)
			texts = append(texts, rep.String(), b.String(), fmt.Sprintf("%+v", *rep), fmt.Sprintf("%#v", rep.Keys))
		}
	}
	note(s.Plan(ctx))
	note(s.Run(ctx))
	// A conflict on the canary key, flagged and then resolved.
	src.Set("TOKEN", canary+"-src")
	dst.Set("TOKEN", canary+"-dst")
	note(s.Run(ctx))
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, fmt.Sprintf("%+v", st))
	note(nil, s.Resolve(ctx, "TOKEN", conflict.UseValue(canary)))
	// A failing write of the canary value.
	failKey = "TOKEN"
	src.Set("TOKEN", canary+"-again")
	note(s.Run(ctx))
	failKey = ""
	note(s.Import(ctx))
	// A refused mass deletion.
	src.Delete("TOKEN")
	src.Delete("PLAIN")
	note(s.Run(ctx))
	note(s.Remove(ctx))
	texts = append(texts, fmt.Sprintf("%v %+v %#v", src.Snapshot()["x"], dst, src))
	for _, sec := range dst.Snapshot() {
		_ = sec
	}
	secret, _ := dst.Get("TOKEN")
	texts = append(texts, fmt.Sprint(secret), fmt.Sprintf("%+v %#v", secret, secret))
	texts = append(texts, fmt.Sprintf("%v %#v", conflict.UseValue(canary), conflict.UseValue(canary)))
	texts = append(texts, destination.Change{Key: "K", Value: canary}.String(), fmt.Sprintf("%#v", destination.Change{Key: "K", Value: canary}))

	for _, e := range rec.Events() {
		texts = append(texts, fmt.Sprintf("%+v", e))
	}
	texts = append(texts, logs.String(), jsonl.String())
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) == 0 {
		t.Fatal("store wrote no file")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
	}
	if rec.Count(audit.SecretSynced) == 0 || rec.Count(audit.ConflictDetected) == 0 || rec.Count(audit.SyncFailed) == 0 {
		t.Fatalf("the scenario did not exercise every event type: %v", rec.Events())
	}
	for i, text := range texts {
		if strings.Contains(text, canary) {
			t.Errorf("text %d leaks the canary: %s", i, text)
		}
	}
}
