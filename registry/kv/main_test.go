package kv_test

import (
	"os"
	"testing"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// Every test in this package runs against one real Vault server.
func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }
