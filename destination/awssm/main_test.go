package awssm_test

import (
	"os"
	"testing"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestRegistryAssociationFromVault runs against a real Vault server,
// started on first use and shared by the package's tests.
func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }
