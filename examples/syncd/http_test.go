package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
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
			dst := memory.NewWithOptions(nil, memory.Options{BeforeApply: func(_ context.Context, c destination.Change) error { return tt.refuse(c.Key) }})
			g := oneSync(t, memory.New(map[string]string{"A": "1", "B": "2"}), dst)
			srv := httptest.NewServer((&server{d: testDaemon(g, nil)}).routes())
			defer srv.Close()

			code, body := call(t, srv, "POST", "/v1/syncs/s/trigger", "")
			var got apiError
			if err := json.Unmarshal([]byte(body), &got); err != nil || code != http.StatusBadGateway || got.Report == nil || got.Report.Totals.Failed == 0 {
				t.Fatalf("trigger = %d %s, want 502 with the report", code, body)
			}
			if !strings.HasPrefix(got.Error, tt.message) || strings.ContainsAny(got.Error, "\r\n") {
				t.Fatalf("error %q: want one line starting %q", got.Error, tt.message)
			}

			code, body = call(t, srv, "GET", "/v1/syncs", "")
			var syncs []apiSync
			if err := json.Unmarshal([]byte(body), &syncs); err != nil || code != 200 || len(syncs) != 1 || syncs[0].Sync == nil {
				t.Fatalf("GET /v1/syncs = %d %s", code, body)
			}
			if rec := syncs[0].Sync; strings.ContainsAny(rec.Message, "\r\n") {
				t.Fatalf("status %s: message is not one line: %q", rec.Status, rec.Message)
			}
		})
	}
}
