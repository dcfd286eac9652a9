package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a loopback address free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDaemonAPIWithoutRegistry runs syncd with an api block and no
// registry block: the subcommands reach its syncs with the token, through
// the api listener; the main listener refuses a trigger (no round runs
// from it); trigger and resolve are audited with who made them; and a
// reload that changes the api block is refused.
func TestDaemonAPIWithoutRegistry(t *testing.T) {
	dir := t.TempDir()
	const token = "api-token-8d1e"
	tokenFile := filepath.Join(dir, "api-token")
	write(t, tokenFile, token+"\n")
	apiAddr := freeAddr(t)
	auditPath := filepath.Join(dir, "audit.jsonl")
	cfgPath := filepath.Join(dir, "syncd.hcl")
	cfgText := fmt.Sprintf("api {\n  listen     = %q\n  token_file = %q\n}\naudit {\n  file = %q\n}\n", apiAddr, tokenFile, auditPath) +
		strings.Replace(dotenvConfig(dir, "bidirectional"), "auto_sync {", "auto_sync {\n    enabled = false", 1)
	write(t, cfgPath, cfgText)
	write(t, filepath.Join(dir, "src.env"), "A=1\nB=2\n")
	if _, err := checkConfig(context.Background(), cfgPath); err != nil {
		t.Fatalf("-check: %v", err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(runCtx, []string{"-config", cfgPath, "-listen", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	listenRE := regexp.MustCompile(`"msg":"syncd started".*"listen":"([^"]+)"`)
	var mainAddr string
	waitFor(t, "the daemon", func() bool {
		m := listenRE.FindStringSubmatch(stderr.String())
		if m != nil {
			mainAddr = m[1]
		}
		return m != nil
	})
	if !strings.Contains(stderr.String(), `"msg":"api started"`) {
		t.Fatalf("no api started in the log:\n%s", stderr.String())
	}

	// The main listener: no sync path, whatever the method.
	for _, p := range []string{"/v1/syncs/files/trigger", "/v1/secretsync/syncs/files/trigger"} {
		resp, err := http.Post("http://"+mainAddr+p, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("main listener: POST %s = %d", p, resp.StatusCode)
		}
	}
	if got := read(t, filepath.Join(dir, "dst.env")); got != "" {
		t.Fatalf("a round ran from the main listener: dst.env = %q", got)
	}
	// The API without its token.
	if code, _ := apiCall(t, "http://"+apiAddr, "", "POST", "/v1/secretsync/syncs/files/trigger", ""); code != http.StatusUnauthorized {
		t.Fatalf("trigger without a token = %d, want 401", code)
	}

	// The subcommands, with the address and the token from -config.
	code, out, errb := runCmd(t, "trigger", "-config", cfgPath, "files")
	if code != exitOK || !strings.Contains(out, "created 2,") {
		t.Fatalf("trigger = %d:\n%s%s", code, out, errb)
	}
	if !strings.Contains(read(t, filepath.Join(dir, "dst.env")), "B=2") {
		t.Fatal("the triggered round did not write dst.env")
	}
	write(t, filepath.Join(dir, "src.env"), "A=from-src\nB=2\n")
	write(t, filepath.Join(dir, "dst.env"), "A=from-dst\nB=2\n")
	if code, out, errb := runCmd(t, "trigger", "-config", cfgPath, "files"); code != exitConflicts {
		t.Fatalf("trigger with a conflict = %d:\n%s%s", code, out, errb)
	}
	if code, out, errb := runCmd(t, "status", "-config", cfgPath); code != exitConflicts || !strings.Contains(out, "files") {
		t.Fatalf("status = %d:\n%s%s", code, out, errb)
	}
	if code, out, errb := runCmd(t, "conflicts", "-config", cfgPath); code != exitConflicts || !strings.Contains(out, "both-changed") {
		t.Fatalf("conflicts = %d:\n%s%s", code, out, errb)
	}
	if code, out, errb := runCmd(t, "resolve", "-config", cfgPath, "files", "A", "keep-source"); code != exitOK {
		t.Fatalf("resolve = %d:\n%s%s", code, out, errb)
	}
	if !strings.Contains(read(t, filepath.Join(dir, "dst.env")), "A=from-src") {
		t.Fatalf("dst.env after keep-source: %q", read(t, filepath.Join(dir, "dst.env")))
	}

	// A reload that changes the api block is refused; the API goes on.
	write(t, cfgPath, strings.Replace(cfgText, apiAddr, freeAddr(t), 1))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload", func() bool { return strings.Contains(stderr.String(), "the api block cannot change on reload") })
	if code, out, errb := runCmd(t, "status", "-addr", apiAddr, "-token-file", tokenFile); code != exitOK {
		t.Fatalf("status after a refused reload = %d:\n%s%s", code, out, errb)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("syncd = %d\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("syncd did not stop within 30s")
	}

	// The audit file: each trigger and the resolution, with who made them.
	b, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Type  string            `json:"type"`
			Sync  string            `json:"sync"`
			Attrs map[string]string `json:"attrs"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		switch e.Type {
		case "SYNC_TRIGGERED", "CONFLICT_RESOLVE_REQUESTED", "API_REQUEST_DENIED":
			seen[e.Type]++
			if e.Type != "API_REQUEST_DENIED" && (e.Attrs["actor"] != "token" || e.Sync != "files") {
				t.Errorf("audit event without its actor or sync: %s", line)
			}
		}
	}
	if seen["SYNC_TRIGGERED"] != 2 || seen["CONFLICT_RESOLVE_REQUESTED"] != 1 || seen["API_REQUEST_DENIED"] != 1 {
		t.Errorf("audit events %v, want 2 SYNC_TRIGGERED, 1 CONFLICT_RESOLVE_REQUESTED, 1 API_REQUEST_DENIED:\n%s", seen, b)
	}
	if strings.Contains(string(b)+stderr.String(), token) || strings.Contains(string(b), "from-src") {
		t.Fatal("the API token or a value reached the log or the audit file")
	}
}

// TestCheckAPIBlock: -check reads the api block's token file and TLS
// files, and names the block.
func TestCheckAPIBlock(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	tokenFile := filepath.Join(dir, "token")
	api := fmt.Sprintf("api {\n  token_file = %q\n}\n", tokenFile)
	write(t, cfgPath, api+dotenvConfig(dir, "push"))
	if _, err := checkConfig(context.Background(), cfgPath); err == nil || !strings.Contains(err.Error(), "api: token_file") || strings.Contains(err.Error(), "registry") {
		t.Fatalf("-check with no token file: %v", err)
	}
	write(t, tokenFile, "  \n")
	if _, err := checkConfig(context.Background(), cfgPath); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("-check with an empty token file: %v", err)
	}
	write(t, tokenFile, "s.token\n")
	if _, err := checkConfig(context.Background(), cfgPath); err != nil {
		t.Fatalf("-check: %v", err)
	}
	tlsAPI := fmt.Sprintf("api {\n  token_file = %q\n  tls_cert = %q\n  tls_key = %q\n}\n", tokenFile, filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	write(t, cfgPath, tlsAPI+dotenvConfig(dir, "push"))
	if _, err := checkConfig(context.Background(), cfgPath); err == nil || !strings.Contains(err.Error(), "api: tls_cert and tls_key") {
		t.Fatalf("-check with missing TLS files: %v", err)
	}
	if strings.Contains(fmt.Sprint(checkConfig(context.Background(), cfgPath)), "s.token") {
		t.Fatal("-check shows the token")
	}
}
