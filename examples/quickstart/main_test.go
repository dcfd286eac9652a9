package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestQuickstart runs the demo that the README's first command runs,
// against a real Vault, with the role holding exactly the policy that
// vaultkv.Policy gives: the first round creates every key, the conflict is
// flagged and resolved, and no value is ever printed.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := runTo(ctx, &out); err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"quickstart sync: 3 created",
		"flagged: DB_PASSWORD (both-changed)",
		"host and Vault agree on DB_PASSWORD: true",
		"HCV_CONFLICT_RESOLVED",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, got)
		}
	}
	for _, secret := range []string{"correct-horse", "tok-123", "mail-pass", "host-rotated", "vault-rotated"} {
		if strings.Contains(got, secret) {
			t.Errorf("the demo printed a secret value")
		}
	}
}
