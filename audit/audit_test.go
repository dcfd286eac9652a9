package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/audit"
)

var when = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func event(t audit.Type) audit.Event {
	return audit.Event{Type: t, Time: when, Sync: "app", RunID: "r1", Key: "DB_URL", DestinationKey: "prod/DB_URL",
		Direction: audit.ToDestination, Outcome: audit.Success, Operation: "sync", Attrs: map[string]string{"b": "2", "a": "1"}}
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	j := audit.NewJSONLines(&buf)
	var wg gosync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = j.Audit(context.Background(), event(audit.SecretSynced)) }()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		var e audit.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Type != audit.SecretSynced || e.Key != "DB_URL" || !e.Time.Equal(when) {
			t.Fatalf("line %q: %+v %v", l, e, err)
		}
	}
	failing := audit.NewJSONLines(errWriter{})
	if err := failing.Audit(context.Background(), event(audit.SecretSynced)); err == nil {
		t.Fatal("a write error was swallowed")
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSlog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := audit.NewSlog(l, nil)
	fail := event(audit.SyncFailed)
	fail.Outcome, fail.Message = audit.Failure, "permission denied"
	for _, e := range []audit.Event{event(audit.SecretSynced), fail} {
		if err := a.Audit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d records: %s", len(lines), buf.String())
	}
	var first, second map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[1]), &second)
	if first["msg"] != "audit" || first["level"] != "INFO" || first["type"] != "SECRET_SYNCED" || first["key"] != "DB_URL" {
		t.Fatalf("record: %v", first)
	}
	if attrs, _ := first["attrs"].(map[string]any); attrs["a"] != "1" {
		t.Fatalf("attrs: %v", first["attrs"])
	}
	if second["level"] != "ERROR" || second["message"] != "permission denied" {
		t.Fatalf("failure record: %v", second)
	}
	quiet := audit.NewSlog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})), &audit.SlogOptions{Message: "sync-audit"})
	buf.Reset()
	_ = quiet.Audit(context.Background(), event(audit.SecretSynced))
	_ = quiet.Audit(context.Background(), fail)
	if n := strings.Count(buf.String(), "sync-audit"); n != 1 {
		t.Fatalf("level filtering: %d records: %s", n, buf.String())
	}
}

func TestRecorderFanoutPrefix(t *testing.T) {
	ctx := context.Background()
	rec, other := audit.NewRecorder(), audit.NewRecorder()
	boom := audit.AuditorFunc(func(context.Context, audit.Event) error { return errors.New("sink down") })
	f := audit.Fanout(rec, nil, boom, audit.Prefix("HCV_", other))
	err := f.Audit(ctx, event(audit.SecretSynced))
	if err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Fatalf("Fanout error = %v", err)
	}
	_ = f.Audit(ctx, event(audit.ConflictDetected))
	if rec.Count(audit.SecretSynced) != 1 || len(rec.Events()) != 2 || len(rec.Filter(audit.ConflictDetected)) != 1 {
		t.Fatalf("recorder: %v", rec.Events())
	}
	if got := other.Events(); len(got) != 2 || got[0].Type != "HCV_SECRET_SYNCED" || got[1].Type != "HCV_CONFLICT_DETECTED" {
		t.Fatalf("prefixed: %v", got)
	}
	_ = audit.Prefix("HCV_", other).Audit(ctx, audit.Event{Type: "HCV_CONNECTION_CREATED"})
	if got := other.Events(); got[2].Type != "HCV_CONNECTION_CREATED" {
		t.Fatalf("prefix applied twice: %v", got[2].Type)
	}
	rec.Reset()
	if len(rec.Events()) != 0 {
		t.Fatal("Reset kept events")
	}
	if err := audit.Discard.Audit(ctx, event(audit.SecretSynced)); err != nil {
		t.Fatal(err)
	}
}
