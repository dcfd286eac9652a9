package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/sync"
)

// metric returns the value of a family for sync s, as written.
func metric(t *testing.T, m *metrics, family, s string) string {
	t.Helper()
	var b bytes.Buffer
	m.write(&b)
	prefix := family + `{sync="` + s + `"} `
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			return v
		}
	}
	t.Fatalf("no %s in:\n%s", prefix, b.String())
	return ""
}

// TestConflictsGaugeKeepsFlaggedConflicts: the gauge counts the conflicts
// flagged in the store (not only those of the last round), and a failed
// round that could not read the store leaves it as it was.
func TestConflictsGaugeKeepsFlaggedConflicts(t *testing.T) {
	m := newMetrics()
	steps := []struct {
		name string
		rep  *sync.Report
		err  error
		want string
	}{
		{"a round that flags one more", &sync.Report{Flagged: 2, Totals: sync.Totals{Conflicts: 1}}, nil, "2"},
		{"a failed round", &sync.Report{Flagged: -1}, errors.New("vault: server unreachable"), "2"},
		{"a round without a report", nil, errors.New("state: load: locked"), "2"},
		{"a quiet round", &sync.Report{Flagged: 2}, nil, "2"},
		{"both resolved", &sync.Report{Flagged: 0}, nil, "0"},
	}
	for i, st := range steps {
		m.observe("s", st.rep, st.err)
		if got := metric(t, m, "secretsync_conflicts", "s"); got != st.want {
			t.Fatalf("after %s: secretsync_conflicts = %s, want %s", st.name, got, st.want)
		}
		if got, want := metric(t, m, "secretsync_rounds_total", "s"), string(rune('1'+i)); got != want {
			t.Fatalf("after %s: rounds = %s, want %s", st.name, got, want)
		}
	}
	if got := metric(t, m, "secretsync_round_failures_total", "s"); got != "2" {
		t.Fatalf("failures = %s, want 2", got)
	}
}
