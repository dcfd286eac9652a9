package vaulttest

import (
	"context"
	"testing"
)

// StartOwn starts a new dev server in Docker for the calling test alone,
// whatever VAULT_ADDR says, and stops it when the test ends. It is for
// tests that harm their server (sealing it, for example), which must not
// touch a shared one. It fails the test when the server cannot start.
func StartOwn(t testing.TB) *Server {
	t.Helper()
	srv, err := startContainer(context.Background())
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return srv
}

// Seal seals the server with its root token. A dev server stays sealed: it
// is for a server of the test's own (StartOwn).
func (s *Server) Seal(t testing.TB) {
	t.Helper()
	if err := s.Client(t).Sys().SealWithContext(context.Background()); err != nil {
		t.Fatalf("vaulttest: seal: %v", err)
	}
}
