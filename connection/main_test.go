package connection_test

import (
	"os"
	"testing"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// The tests in vault_test.go run against one real Vault server.
func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }
