package secretsync_test

import (
	"os/exec"
	"strings"
	"testing"
)

// heavy are dependencies that the library's core packages must not link:
// Docker, testcontainers, HCL, gRPC and the cloud SDKs.
var heavy = []string{"docker", "testcontainers", "hashicorp/hcl/v2", "google.golang.org/grpc", "opentelemetry",
	"aws", "azure", "Azure", "cloud.google.com", "google/go-github", "golang.org/x/crypto/nacl", "googleapis", "prometheus"}

// TestLibraryDependencies keeps heavy dependencies out of the library
// packages: importing them must not pull in Docker, testcontainers, HCL or
// cloud SDKs. Each store driver links its own SDK and nothing else heavy.
func TestLibraryDependencies(t *testing.T) {
	core := []string{"./sync", "./conflict", "./keyschema", "./destination", "./destination/memory", "./destination/dotenv", "./destination/funcs", "./destination/env",
		"./destination/destinationtest", "./registry", "./registry/kv", "./state", "./audit", "./connection", "./vaultkv"}
	for _, dep := range deps(t, core...) {
		for _, h := range heavy {
			if strings.Contains(dep, h) {
				t.Errorf("a library package depends on %s", dep)
			}
		}
	}
	// A driver links its own SDK, and never another store's, nor Docker.
	drivers := map[string][]string{
		"./destination/awssm":     {"aws"},
		"./destination/azurekv":   {"azure", "Azure"},
		"./destination/gcpsm":     {"cloud.google.com", "google.golang.org/grpc", "googleapis", "opentelemetry"},
		"./destination/ghactions": {"google/go-github", "golang.org/x/crypto/nacl"},
		"./destination/vercel":    nil,
	}
	for pkg, own := range drivers {
	next:
		for _, dep := range deps(t, pkg) {
			for _, o := range own {
				if strings.Contains(dep, o) {
					continue next
				}
			}
			for _, h := range heavy {
				if strings.Contains(dep, h) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

// TestImportsPointDown: the registry orchestrates syncs, so it sits above
// them; the engine, the destination contract, the Vault side, the state
// stores and the connection never import it (registry/kv, which joins the
// registry to Vault, imports both).
func TestImportsPointDown(t *testing.T) {
	const registry = "github.com/secretsync/secretsync/registry"
	for _, pkg := range []string{"./sync", "./destination", "./vaultkv", "./state", "./connection"} {
		for _, dep := range deps(t, pkg) {
			if dep == registry || strings.HasPrefix(dep, registry+"/") {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}

func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", pkgs, err, out)
	}
	return strings.Fields(string(out))
}
