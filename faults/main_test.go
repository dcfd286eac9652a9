package faults_test

import (
	"os"
	"testing"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestMain runs the tests against one shared Vault server (tests that need
// a server of their own start it), or, in a child process that a test
// started, that process's part.
func TestMain(m *testing.M) {
	if mode := os.Getenv(faultsChildEnv); mode != "" {
		os.Exit(child(mode))
	}
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(sigkillChild(spec))
	}
	os.Exit(vaulttest.Main(m))
}
