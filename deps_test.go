package secretsync_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryDependencies keeps heavy dependencies out of the library
// packages: importing them must not pull in Docker, testcontainers, HCL or
// cloud SDKs (those belong to vaultkv/vaulttest and the examples).
func TestLibraryDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed to list dependencies")
	}
	out, err := exec.Command("go", "list", "-deps",
		"./sync", "./conflict", "./keyschema", "./destination/...", "./state", "./audit", "./connection", "./vaultkv").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, heavy := range []string{"docker", "testcontainers", "hashicorp/hcl/v2", "google.golang.org/grpc", "opentelemetry", "aws", "azure", "cloud.google.com"} {
			if strings.Contains(dep, heavy) && !strings.HasSuffix(dep, "destinationtest") {
				t.Errorf("a library package depends on %s", dep)
			}
		}
	}
}
