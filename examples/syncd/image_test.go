package main

import (
	"bytes"
	"crypto/x509"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// maxImageBytes bounds the image: the binary (about 31 MB, every cloud
// driver linked) and nothing else.
const maxImageBytes = 48 << 20

// requireDocker fails the test, never skips it, when no Docker daemon
// answers: the image is part of what the daemon ships.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("docker is not installed (run scripts/ensure-docker): %v", err)
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		t.Fatalf("no Docker daemon answers (run scripts/ensure-docker): %v\n%s", err, out)
	}
}

// docker runs docker with args and returns its stdout, stderr and exit
// status; it fails the test when docker cannot be started at all.
func docker(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// buildImage runs scripts/syncd-image with the given version and image
// name, and returns the name it printed. The image is removed when the
// test ends.
func buildImage(t *testing.T, version, name string) string {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "syncd-image"))
	cmd.Env = append(os.Environ(), "SYNCD_VERSION="+version, "SYNCD_IMAGE="+name)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/syncd-image: %v\n%s", err, errb.String())
	}
	t.Cleanup(func() { docker(t, "rmi", "-f", name) })
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || lines[0] != name {
		t.Fatalf("scripts/syncd-image printed %q, want the image name %q alone", out.String(), name)
	}
	return lines[0]
}

// imageConfig is a directory to mount at /etc/syncd, readable by the
// image's user, holding syncd.hcl: a dotenv-to-dotenv sync whose files and
// state live in the image's state volume.
func imageConfig(t *testing.T, mode string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen = "0.0.0.0:8080"

state {
  file = "/var/lib/syncd/state.json"
}

sync "app" {
  mode = %q
  source {
    dotenv {
      path = "/var/lib/syncd/app.env"
    }
  }
  destination {
    dotenv {
      path = "/var/lib/syncd/out.env"
    }
  }
  auto_sync {
    interval = "1h"
  }
}
`, mode)
	if err := os.WriteFile(filepath.Join(dir, "syncd.hcl"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestImage builds the image with scripts/syncd-image and checks it: its
// settings, its size, the binary it holds (static, trimmed, version
// stamped, Mozilla's roots linked), -version and -check on a mounted
// configuration, and a daemon that becomes ready as the image's user,
// reloads on SIGHUP and exits 0 on docker stop.
func TestImage(t *testing.T) {
	requireDocker(t)
	const version = "v0.0.0-imagetest"
	image := buildImage(t, version, fmt.Sprintf("secretsync/syncd-test:%d", os.Getpid()))

	// Settings and size.
	out, errb, code := docker(t, "image", "inspect", image)
	if code != 0 {
		t.Fatalf("docker image inspect: %s", errb)
	}
	var inspect []struct {
		Size   int64
		Config struct {
			User         string
			WorkingDir   string
			Entrypoint   []string
			Cmd          []string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
			Labels       map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("docker image inspect: %v\n%s", err, out)
	}
	c := inspect[0].Config
	if c.User != "65532:65532" || c.WorkingDir != "/var/lib/syncd" ||
		!slices.Equal(c.Entrypoint, []string{"/usr/local/bin/syncd"}) ||
		!slices.Equal(c.Cmd, []string{"-config", "/etc/syncd/syncd.hcl"}) {
		t.Errorf("image config: user %q, workdir %q, entrypoint %q, cmd %q", c.User, c.WorkingDir, c.Entrypoint, c.Cmd)
	}
	for _, p := range []string{"8080/tcp", "8201/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("port %s is not exposed: %v", p, c.ExposedPorts)
		}
	}
	if _, ok := c.Volumes["/var/lib/syncd"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("volumes %v, want /var/lib/syncd alone", c.Volumes)
	}
	if v := c.Labels["org.opencontainers.image.version"]; v != version {
		t.Errorf("version label %q, want %q", v, version)
	}
	size := inspect[0].Size
	t.Logf("image %s: %d bytes (%.1f MiB)", image, size, float64(size)/(1<<20))
	if size > maxImageBytes {
		t.Errorf("the image is %d bytes, more than %d", size, maxImageBytes)
	}

	// The binary in the image.
	ctr, errb, code := docker(t, "create", image)
	if code != 0 {
		t.Fatalf("docker create: %s", errb)
	}
	ctr = strings.TrimSpace(ctr)
	bin := filepath.Join(t.TempDir(), "syncd")
	_, errb, code = docker(t, "cp", ctr+":/usr/local/bin/syncd", bin)
	docker(t, "rm", ctr)
	if code != 0 {
		t.Fatalf("docker cp: %s", errb)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["GOOS"] != "linux" {
		t.Errorf("the binary is not static and trimmed: %v", settings)
	}
	if !slices.ContainsFunc(bi.Deps, func(m *debug.Module) bool { return m.Path == "golang.org/x/crypto/x509roots/fallback" }) {
		t.Error("the binary does not link golang.org/x/crypto/x509roots/fallback: TLS in the image would have no roots")
	}

	// -version prints the stamped version, and the commit when the build
	// recorded one.
	out, errb, code = docker(t, "run", "--rm", image, "-version")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || lines[0] != "syncd "+version || !strings.HasPrefix(lines[1], "commit ") || !strings.HasPrefix(lines[2], "go1.") {
		t.Fatalf("-version = %d:\n%s%s", code, out, errb)
	}
	if rev := settings["vcs.revision"]; rev != "" && !strings.HasPrefix(lines[1], "commit "+rev) {
		t.Errorf("-version says %q; the build recorded commit %s", lines[1], rev)
	}

	// -check on a mounted configuration: valid, then not.
	good := imageConfig(t, "push")
	out, errb, code = docker(t, "run", "--rm", "-v", good+":/etc/syncd:ro", image, "-check", "-config", "/etc/syncd/syncd.hcl")
	if code != 0 || !strings.Contains(out, "/etc/syncd/syncd.hcl: valid") {
		t.Fatalf("-check of a valid configuration = %d:\n%s%s", code, out, errb)
	}
	bad := imageConfig(t, "sideways")
	out, errb, code = docker(t, "run", "--rm", "-v", bad+":/etc/syncd:ro", image, "-check", "-config", "/etc/syncd/syncd.hcl")
	if code != exitFailure || !strings.Contains(errb, `mode "sideways"`) {
		t.Fatalf("-check of a bad configuration = %d, want %d:\n%s%s", code, exitFailure, out, errb)
	}

	// The daemon, as the image's user, with its state in the volume.
	// As the guide runs it: a read-only root, no capability.
	ctr, errb, code = docker(t, "run", "-d", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-p", "127.0.0.1::8080", "-v", good+":/etc/syncd:ro", image)
	if code != 0 {
		t.Fatalf("docker run -d: %s", errb)
	}
	ctr = strings.TrimSpace(ctr)
	t.Cleanup(func() { docker(t, "rm", "-f", "-v", ctr) })
	logs := func() string { o, e, _ := docker(t, "logs", ctr); return o + e }
	port, errb, code := docker(t, "port", ctr, "8080/tcp")
	if code != 0 {
		t.Fatalf("docker port: %s\n%s", errb, logs())
	}
	addr := strings.TrimSpace(strings.Split(port, "\n")[0])
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("published at %q, not on loopback", addr)
	}
	ready := waitReady(t, "http://"+addr+"/readyz")
	if !ready {
		t.Fatalf("the daemon in the image never became ready\n%s", logs())
	}
	if _, errb, code := docker(t, "kill", "-s", "HUP", ctr); code != 0 {
		t.Fatalf("docker kill -s HUP: %s", errb)
	}
	if !waitLog(t, logs, `"msg":"configuration reloaded"`) {
		t.Fatalf("no reload after SIGHUP\n%s", logs())
	}
	if _, errb, code := docker(t, "stop", ctr); code != 0 {
		t.Fatalf("docker stop: %s", errb)
	}
	out, _, _ = docker(t, "inspect", "-f", "{{.State.ExitCode}}", ctr)
	if strings.TrimSpace(out) != "0" {
		t.Fatalf("syncd exited %s on docker stop (SIGTERM), want 0\n%s", out, logs())
	}
	if l := logs(); !strings.Contains(l, `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the log:\n%s", l)
	}
}

// waitReady polls url until it answers 200, for at most two minutes; a
// bound on waiting, not a timed assertion.
func waitReady(t *testing.T, url string) bool {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true
		}
	}
	return false
}

// waitLog polls the log until it holds want, for at most two minutes.
func waitLog(t *testing.T, logs func() string, want string) bool {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if strings.Contains(logs(), want) {
			return true
		}
	}
	return false
}

// TestFallbackRoots: the daemon links Mozilla's roots as the fallback for
// a system without a CA bundle (the FROM-scratch image): they are set
// already, so setting them again panics.
func TestFallbackRoots(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("x509.SetFallbackRoots did not panic: syncd sets no fallback roots, and TLS in a FROM-scratch image would fail")
		}
	}()
	x509.SetFallbackRoots(x509.NewCertPool())
}

// TestLibraryDoesNotLinkFallbackRoots: the fallback roots are the
// daemon's choice, global to a process; no package of the library (any
// package outside examples/) links them.
func TestLibraryDoesNotLinkFallbackRoots(t *testing.T) {
	const fallback = "golang.org/x/crypto/x509roots/fallback"
	out, err := exec.Command("go", "list", "-C", filepath.Join("..", ".."), "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked, daemon := 0, false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, " ")
		links := slices.Contains(strings.Fields(deps), fallback)
		if pkg == "github.com/secretsync/secretsync/examples/syncd" {
			daemon = links
		}
		if strings.Contains(pkg, "/examples/") {
			continue
		}
		checked++
		if links {
			t.Errorf("%s links %s", pkg, fallback)
		}
	}
	if checked < 10 || !daemon {
		t.Fatalf("checked %d library packages, the daemon links the roots: %v; the listing is wrong\n%s", checked, daemon, out)
	}
}
