package vaulttest

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/connection"
)

// TokenOptions adjust NewToken.
type TokenOptions struct {
	// NoDefaultPolicy leaves out Vault's default policy, which tokens
	// otherwise hold besides the policies they are given.
	NoDefaultPolicy bool
}

// NewToken writes each HCL policy under a fresh name and returns a new token
// (a child of the root token) that holds exactly those policies, plus
// Vault's default policy as tokens normally do unless options say otherwise.
// A nil options means the zero TokenOptions.
func (s *Server) NewToken(t testing.TB, options *TokenOptions, hcl ...string) string {
	var opts TokenOptions
	if options != nil {
		opts = *options
	}
	t.Helper()
	names := make([]string, 0, len(hcl))
	for _, h := range hcl {
		names = append(names, s.Policy(t, h))
	}
	sec, err := s.Client(t).Auth().Token().CreateWithContext(context.Background(), &api.TokenCreateRequest{
		Policies: names, NoDefaultPolicy: opts.NoDefaultPolicy, TTL: "1h",
	})
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("vaulttest: token: %v", err)
	}
	return sec.Auth.ClientToken
}

// TokenConn returns a connection that uses token, closed when the test
// ends.
func (s *Server) TokenConn(t testing.TB, token string) *connection.Conn {
	t.Helper()
	return s.connect(t, connection.Config{Address: s.Addr, Token: &connection.Token{Token: connection.Credential{Value: token}}})
}
