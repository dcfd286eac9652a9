package awssm_test

import (
	"os"
	"testing"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// The tests that need Vault (TestRegistryAssociationFromVault) share one
// real server, started on first use.
func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }
