package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/secretsync/secretsync/state"
)

// syncBuffer is a buffer that the daemon's goroutines may write at once.
type syncBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// closedAddr returns the URL of a loopback port that nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// runNoPanic runs the daemon's main function and turns a panic into a test
// failure.
func runNoPanic(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("syncd %s panicked: %v", strings.Join(args, " "), r)
			}
		}()
		code = runContext(ctx, args, &out, &errb)
	}()
	return code, out.String(), errb.String()
}

// withState returns the dotenv config of dir with its state file at path.
func withState(dir, path string) string {
	return strings.Replace(dotenvConfig(dir, "bidirectional"), fmt.Sprintf("%q", filepath.Join(dir, "state.json")), fmt.Sprintf("%q", path), 1)
}

// withSync returns the dotenv config of dir with one more sync, from a
// dotenv file to the given destination block.
func withSync(dir, destination string) string {
	return dotenvConfig(dir, "bidirectional") + fmt.Sprintf(`
sync "more" {
  source {
    dotenv { path = %q }
  }
  destination {
    %s
  }
}
`, filepath.Join(dir, "more.env"), destination)
}

// vaultAt returns a connection block named "v" for addr and a Vault
// destination block on it.
func vaultAt(addr string) (conn, dest string) {
	return fmt.Sprintf(`
connection "v" {
  address = %q
  token { env = "SYNCD_TEST_TOKEN" }
}
`, addr), `vault {
      connection = "v"
      mount = "secret"
      path = "apps"
    }`
}

// unbuildable lists configurations of dir that load but cannot be built,
// each with how its error must start (after the file name, at start) and
// the cause it must name. held is a state file that another state.File
// holds.
func unbuildable(t *testing.T, dir, held string) []struct{ name, cfg, want, cause string } {
	conn, dest := vaultAt(closedAddr(t))
	return []struct{ name, cfg, want, cause string }{
		{"vault unreachable", conn + withSync(dir, dest), `sync "more": destination: vaultkv: check mount "secret": `, "connection refused"},
		{"state file locked", withState(dir, held), "state: " + held + ".lock is held by another", "state file in use"},
		{"state directory missing", withState(dir, filepath.Join(dir, "missing", "state.json")), "state: open file " + filepath.Join(dir, "missing", "state.json"), "no such file or directory"},
		{"side directory missing", withSync(dir, fmt.Sprintf("dotenv { path = %q }", filepath.Join(dir, "missing", "x.env"))), `sync "more": destination: dotenv: open`, "no such file or directory"},
	}
}

// TestStartRefusesAConfigThatCannotBeBuilt: syncd exits with status 1 and
// the cause, in -once and as a daemon, and never panics.
func TestStartRefusesAConfigThatCannotBeBuilt(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SYNCD_TEST_TOKEN", "not-a-token")
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	write(t, filepath.Join(dir, "more.env"), "M=1\n")
	held, err := state.OpenFile(filepath.Join(dir, "held.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	for _, tt := range unbuildable(t, dir, filepath.Join(dir, "held.json")) {
		write(t, cfgPath, tt.cfg)
		for _, mode := range [][]string{{"-once"}, {"-listen", "127.0.0.1:0"}} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			code, _, stderr := runNoPanic(t, ctx, append([]string{"-config", cfgPath}, mode...)...)
			cancel()
			if code != 1 || !strings.Contains("\n"+stderr, "\nsyncd: cannot run "+cfgPath+": "+tt.want) || !strings.Contains(stderr, tt.cause) {
				t.Errorf("%s, %s: exit %d, want 1 and an error naming %q and %q:\n%s", tt.name, mode[0], code, tt.want, tt.cause, stderr)
			}
		}
	}
	if read(t, filepath.Join(dir, "dst.env")) != "" {
		t.Fatal("a configuration that could not be built wrote")
	}
}

// startDaemon builds the configuration at cfgPath and starts it.
func startDaemon(t *testing.T, cfgPath string, logs *syncBuffer) *daemon {
	t.Helper()
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	m := newMetrics()
	g, err := build(context.Background(), cfg, log, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{path: cfgPath, log: log, metrics: m}
	d.start(g)
	t.Cleanup(func() { d.current().stop(nil) })
	return d
}

// keepsRunning checks that the running generation of the dotenv config in
// dir still runs rounds and saves its state: a new source key reaches the
// destination and the state file on disk.
func keepsRunning(t *testing.T, dir, key string) {
	t.Helper()
	src := filepath.Join(dir, "src.env")
	write(t, src, read(t, src)+key+"=1\n")
	waitFor(t, key+" at the destination", func() bool { return strings.Contains(read(t, filepath.Join(dir, "dst.env")), key+"=1") })
	waitFor(t, key+" in the saved state", func() bool { return strings.Contains(read(t, filepath.Join(dir, "state.json")), `"`+key+`":`) })
}

// TestReloadRefusesAConfigThatCannotBeBuilt: the running generation is
// untouched, its state store included (the new one would have reused it),
// and goes on running rounds and saving state.
func TestReloadRefusesAConfigThatCannotBeBuilt(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SYNCD_TEST_TOKEN", "not-a-token")
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, dotenvConfig(dir, "bidirectional"))
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	write(t, filepath.Join(dir, "more.env"), "M=1\n")
	held, err := state.OpenFile(filepath.Join(dir, "held.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var logs syncBuffer
	d := startDaemon(t, cfgPath, &logs)
	waitFor(t, "the first round", func() bool { return strings.Contains(read(t, filepath.Join(dir, "dst.env")), "A=1") })
	old := d.current()

	for i, tt := range unbuildable(t, dir, filepath.Join(dir, "held.json")) {
		write(t, cfgPath, tt.cfg)
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s: reload panicked: %v", tt.name, r)
				}
			}()
			err = d.reload(context.Background())
		}()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.cause) {
			t.Fatalf("%s: reload = %v, want an error naming %q and %q", tt.name, err, tt.want, tt.cause)
		}
		if d.current() != old {
			t.Fatalf("%s: the refused configuration replaced the running one", tt.name)
		}
		keepsRunning(t, dir, fmt.Sprintf("AFTER_%d", i))
	}
	if strings.Contains(read(t, filepath.Join(dir, "state.json")), `"more"`) {
		t.Fatal("a refused configuration ran")
	}
}

// TestSIGHUPWithAConfigThatCannotBeBuilt sends SIGHUP to a running daemon
// whose file now holds a configuration that cannot be built: the refusal
// is logged with its cause, and the daemon goes on.
func TestSIGHUPWithAConfigThatCannotBeBuilt(t *testing.T) {
	// The test takes SIGHUP too, so that the signal can never end the test
	// process, whatever the daemon does.
	mine := make(chan os.Signal, 1)
	signal.Notify(mine, syscall.SIGHUP)
	defer signal.Stop(mine)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, dotenvConfig(dir, "bidirectional"))
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan any, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Sprintf("panic: %v", r)
			}
		}()
		done <- runContext(ctx, []string{"-config", cfgPath, "-listen", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	waitFor(t, "the first round", func() bool { return strings.Contains(read(t, filepath.Join(dir, "dst.env")), "A=1") })

	// The state store is reused; the new sync's file cannot be opened.
	write(t, cfgPath, withSync(dir, fmt.Sprintf("dotenv { path = %q }", filepath.Join(dir, "missing", "x.env"))))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal in the log", func() bool {
		select {
		case r := <-done:
			t.Fatalf("syncd ended on SIGHUP: %v\n%s", r, stderr.String())
		default:
		}
		return strings.Contains(stderr.String(), `"msg":"reload refused; the running configuration goes on"`) &&
			strings.Contains(stderr.String(), `sync \"more\": destination: dotenv: open`)
	})
	keepsRunning(t, dir, "AFTER_HUP")
	cancel()
	if r := <-done; r != 0 {
		t.Fatalf("syncd = %v, want 0\n%s", r, stderr.String())
	}
}

// TestReloadKeepsTheStateFileNamedAnotherWay: the running state file is
// reused when the new configuration names the same file differently (it
// can be open only once, so opening it again would refuse the reload).
func TestReloadKeepsTheStateFileNamedAnotherWay(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, dotenvConfig(dir, "bidirectional"))
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	var logs syncBuffer
	d := startDaemon(t, cfgPath, &logs)
	old := d.current()
	write(t, cfgPath, strings.Replace(withState(dir, dir+"/./state.json"), `"bidirectional"`, `"push"`, 1))
	if err := d.reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if g := d.current(); g == old || g.store != old.store || g.syncs["files"].syncer.Config().Mode.String() != "push" {
		t.Fatal("the new configuration does not run on the same state store")
	}
	keepsRunning(t, dir, "AFTER_RELOAD")
}

// TestReloadRefusesAChangedTransitBlock: the state file stays open across
// a reload, sealed as it was opened, so a reload that adds (or changes) its
// transit block is refused with the reason, and the running generation
// goes on, instead of silently keeping an unsealed key.
func TestReloadRefusesAChangedTransitBlock(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, dotenvConfig(dir, "bidirectional"))
	write(t, filepath.Join(dir, "src.env"), "A=1\n")
	var logs syncBuffer
	d := startDaemon(t, cfgPath, &logs)
	old := d.current()
	sealed := strings.Replace(dotenvConfig(dir, "bidirectional"), "state {\n", `connection "v" {
  address = "http://127.0.0.1:1"
  token { env = "SYNCD_TEST_TOKEN" }
}
state {
  transit {
    connection = "v"
    key        = "syncd"
  }
`, 1)
	write(t, cfgPath, sealed)
	err := d.reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "transit") || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("reload = %v, want a refusal that names the transit block and a restart", err)
	}
	if d.current() != old {
		t.Fatal("a refused reload replaced the running generation")
	}
	keepsRunning(t, dir, "AFTER_REFUSED_RELOAD")
}
