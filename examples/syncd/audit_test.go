package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/secretsync/secretsync/audit"
)

// withAudit returns the dotenv config of dir with an audit block for path.
func withAudit(dir, mode, path string) string {
	return dotenvConfig(dir, mode) + fmt.Sprintf("audit {\n  file = %q\n}\n", path)
}

// auditEvents reads the JSON lines of an audit file, failing on a line
// that is not an event.
func auditEvents(t *testing.T, path string) []audit.Event {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Type == "" {
			t.Fatalf("%s: line %q is not an event: %v", path, sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// synced returns the keys of the SECRET_SYNCED events.
func synced(events []audit.Event) []string {
	var keys []string
	for _, e := range events {
		if e.Type == audit.SecretSynced {
			keys = append(keys, e.Key)
		}
	}
	return keys
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestAuditFile: with an audit block, -once writes its events to the file
// as JSON lines, without a value, in a file of mode 0600 (an existing one
// that others could read is narrowed), and not to the log.
func TestAuditFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	auditPath := filepath.Join(dir, "audit.jsonl")
	write(t, cfgPath, withAudit(dir, "push", auditPath))
	write(t, filepath.Join(dir, "src.env"), "A=canary-value-1\nB=canary-value-2\n")
	code, out, errb := runNoPanic(t, context.Background(), "-config", cfgPath, "-once")
	if code != 0 {
		t.Fatalf("-once = %d:\n%s\n%s", code, out, errb)
	}
	if m := mode(t, auditPath); m != 0o600 {
		t.Fatalf("audit file mode %v, want 0600", m)
	}
	events := auditEvents(t, auditPath)
	if got := synced(events); strings.Join(got, ",") != "A,B" {
		t.Fatalf("synced events %v, want A and B: %+v", got, events)
	}
	raw := read(t, auditPath)
	if strings.Contains(raw, "canary-value") || strings.Contains(errb, "canary-value") {
		t.Fatal("a value reached the audit file or the log")
	}
	if strings.Contains(errb, "SECRET_SYNCED") {
		t.Fatalf("audit events went to the log too:\n%s", errb)
	}

	// An existing file is appended to, and narrowed to 0600.
	if err := os.Chmod(auditPath, 0o644); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "src.env"), "A=canary-value-1\nB=canary-value-2\nC=canary-value-3\n")
	if code, out, errb := runNoPanic(t, context.Background(), "-config", cfgPath, "-once"); code != 0 {
		t.Fatalf("-once = %d:\n%s\n%s", code, out, errb)
	}
	if m := mode(t, auditPath); m != 0o600 {
		t.Fatalf("audit file mode %v after a second run, want 0600", m)
	}
	if got := synced(auditEvents(t, auditPath)); strings.Join(got, ",") != "A,B,C" {
		t.Fatalf("synced events %v, want A, B, then C", got)
	}

	// A directory that does not exist: the configuration cannot be built.
	write(t, cfgPath, withAudit(dir, "push", filepath.Join(dir, "missing", "audit.jsonl")))
	if code, _, errb := runNoPanic(t, context.Background(), "-config", cfgPath, "-once"); code != 1 || !strings.Contains(errb, "audit: open "+filepath.Join(dir, "missing")) {
		t.Fatalf("-once with an audit file in a missing directory = %d:\n%s", code, errb)
	}
}

// TestAuditFileReopenedOnSIGHUP rotates the audit file of a running daemon
// as logrotate would: after mv and SIGHUP, new events go to a new file at
// the path, of mode 0600, and the moved file gets no more.
func TestAuditFileReopenedOnSIGHUP(t *testing.T) {
	mine := make(chan os.Signal, 1)
	signal.Notify(mine, syscall.SIGHUP)
	defer signal.Stop(mine)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	auditPath := filepath.Join(dir, "audit.jsonl")
	write(t, cfgPath, withAudit(dir, "push", auditPath))
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"-config", cfgPath, "-listen", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	waitFor(t, "the first event", func() bool { return strings.Join(synced(auditEvents(t, auditPath)), ",") == "A" })

	rotated := auditPath + ".1"
	if err := os.Rename(auditPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the audit file opened again", func() bool {
		return strings.Contains(stderr.String(), `"msg":"audit file opened again"`) && strings.Contains(stderr.String(), `"msg":"configuration reloaded"`)
	})
	if m := mode(t, auditPath); m != 0o600 {
		t.Fatalf("new audit file mode %v, want 0600", m)
	}
	write(t, filepath.Join(dir, "src.env"), "A=1\nB=2\n")
	waitFor(t, "B's event in the new file", func() bool { return strings.Join(synced(auditEvents(t, auditPath)), ",") == "B" })
	if got := synced(auditEvents(t, rotated)); strings.Join(got, ",") != "A" {
		t.Fatalf("the rotated file has %v, want A alone", got)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("syncd = %d\n%s", code, stderr.String())
	}
}

// TestReloadMovesTheAuditFile: a reload that names another audit file
// writes there from then on and closes the old one; one that keeps the
// path keeps the file open.
func TestReloadMovesTheAuditFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	first, second := filepath.Join(dir, "first.jsonl"), filepath.Join(dir, "second.jsonl")
	write(t, cfgPath, withAudit(dir, "push", first))
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	var logs syncBuffer
	d := startDaemon(t, cfgPath, &logs)
	waitFor(t, "A's event", func() bool { return len(synced(auditEvents(t, first))) == 1 })
	old := d.current().audit

	if err := d.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.current().audit != old {
		t.Fatal("a reload with the same audit path opened the file again")
	}
	write(t, cfgPath, withAudit(dir, "push", second))
	if err := d.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Write([]byte("{}\n")); err == nil {
		t.Fatal("the old audit file is still open")
	}
	write(t, filepath.Join(dir, "src.env"), "A=1\nB=2\n")
	waitFor(t, "B's event in the second file", func() bool { return strings.Join(synced(auditEvents(t, second)), ",") == "B" })
	if got := synced(auditEvents(t, first)); strings.Join(got, ",") != "A" {
		t.Fatalf("first file: %v", got)
	}
}
