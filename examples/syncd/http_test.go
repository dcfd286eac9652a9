package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry/httpapi"
)

// TestManualTriggerTellsFailedKeys: a manual round in which keys failed is
// not answered 200, whether or not the round returned an error, and the
// status the API shows is one line.
func TestManualTriggerTellsFailedKeys(t *testing.T) {
	for _, tt := range []struct {
		name    string
		refuse  func(key string) error
		message string
	}{
		{"a client timeout on one key", func(key string) error {
			if key == "B" {
				return fmt.Errorf("vault: write secret/B: %w", context.DeadlineExceeded)
			}
			return nil
		}, `sync: put "B" at destination: `},
		{"two keys refused", func(key string) error {
			return &destination.KeyError{Op: "put", Key: key, Err: destination.ErrInvalidValue}
		}, "2 errors: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error { return tt.refuse(c.Key) }})
			g := oneSync(t, memory.New(map[string]string{"A": "1", "B": "2"}), dst)
			srv, _ := testAPI(t, testDaemon(g, nil))

			code, body := callAPI(t, srv, "POST", "/v1/secretsync/syncs/s/trigger", "")
			var got struct {
				Errors []string
				Data   httpapi.TriggerResult
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil || code != http.StatusBadGateway || got.Data.Report == nil || got.Data.Report.Totals.Failed == 0 || len(got.Errors) != 1 {
				t.Fatalf("trigger = %d %s, want 502 with the report", code, body)
			}
			if !strings.HasPrefix(got.Errors[0], tt.message) || strings.ContainsAny(got.Errors[0], "\r\n") {
				t.Fatalf("error %q: want one line starting %q", got.Errors[0], tt.message)
			}

			code, body = callAPI(t, srv, "GET", "/v1/secretsync/syncs", "")
			var list struct {
				Data struct{ Syncs []httpapi.SyncInfo }
			}
			if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 || len(list.Data.Syncs) != 1 || list.Data.Syncs[0].Sync == nil {
				t.Fatalf("GET /v1/secretsync/syncs = %d %s", code, body)
			}
			if rec := list.Data.Syncs[0].Sync; strings.ContainsAny(rec.Message, "\r\n") {
				t.Fatalf("status %s: message is not one line: %q", rec.Status, rec.Message)
			}
		})
	}
}
