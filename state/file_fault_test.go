//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package state

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/internal/fingerprint"
)

// diskFault is a fault of the file system under a state file, real where
// the test may mount a file system and injected with failAt otherwise.
type diskFault struct {
	name  string
	errno syscall.Errno
	// real makes the fault happen on the tmpfs mounted on dir and returns
	// the function that ends it.
	real func(t *testing.T, dir string) (end func())
	// step is the step of an atomic write where the injected fault hits.
	step string
}

var diskFaults = []diskFault{
	{
		name: "disk full", errno: syscall.ENOSPC, step: "sync",
		real: func(t *testing.T, dir string) func() {
			filler := filepath.Join(dir, "filler")
			fill(t, filler)
			return func() {
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
			}
		},
	},
	{
		name: "read-only directory", errno: syscall.EROFS, step: "create",
		real: func(t *testing.T, dir string) func() {
			if err := remount(dir, true); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := remount(dir, false); err != nil {
					t.Fatal(err)
				}
			}
		},
	},
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := w.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

// TestFileDiskFaults: a Save that hits a full disk or a read-only directory
// fails with an error naming the state file, leaves the file, what Load
// returns and the directory as they were, and the next Save after the
// fault ends succeeds.
func TestFileDiskFaults(t *testing.T) {
	ctx := context.Background()
	for _, fault := range diskFaults {
		t.Run(fault.name, func(t *testing.T) {
			dir := t.TempDir()
			mountErr := mountSmall(t, dir, 64<<10)
			path := filepath.Join(dir, "state.json")
			f := openTestFile(t, path, nil)
			key, err := f.FingerprintKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			old := sampleState(t)
			if err := f.Save(ctx, "app", old); err != nil {
				t.Fatal(err)
			}

			var end func()
			if mountErr == nil {
				t.Logf("real fault: %s on a 64 KiB tmpfs", fault.name)
				end = fault.real(t, dir)
			} else {
				t.Logf("injected fault: %v at step %q (%v)", fault.errno, fault.step, mountErr)
				f.failAt = func(step string) error {
					if step == fault.step {
						return fault.errno
					}
					return nil
				}
				end = func() { f.failAt = nil }
			}
			before := readFile(t, path)
			names := dirNames(t, dir)

			h, _ := fingerprint.New(key)
			next := old.Clone()
			for i := range 100 {
				k := fmt.Sprintf("KEY_%03d", i)
				next.Baseline[k] = h.Sum(k)
			}
			next.Initialized = false
			for _, name := range []string{"app", "new-sync"} {
				st := next.Clone()
				if name == "new-sync" {
					st.Revision = 0
				}
				err := f.Save(ctx, name, st)
				if !errors.Is(err, fault.errno) {
					t.Fatalf("Save(%q) = %v, want %v", name, err, fault.errno)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("Save(%q) error %q does not name the state file", name, err)
				}
				if name == "app" && st.Revision != old.Revision {
					t.Errorf("failed Save set Revision to %d", st.Revision)
				}
			}
			if got := readFile(t, path); !bytes.Equal(got, before) {
				t.Error("failed Save changed the state file")
			}
			if got := dirNames(t, dir); !slices.Equal(got, names) {
				t.Errorf("failed Save left %q, want %q", got, names)
			}
			if got, err := f.Load(ctx, "app"); err != nil || !reflect.DeepEqual(got, old) {
				t.Fatalf("Load after failed Save = %+v, %v; want the old state", got, err)
			}
			if _, err := f.Load(ctx, "new-sync"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Load of a sync whose first Save failed = %v, want ErrNotFound", err)
			}

			end()
			if err := f.Save(ctx, "app", next); err != nil || next.Revision != old.Revision+1 {
				t.Fatalf("Save after the fault ended = %v, revision %d; want nil, %d", err, next.Revision, old.Revision+1)
			}
			f.Close()
			g := openTestFile(t, path, nil)
			if got, err := g.Load(ctx, "app"); err != nil || !reflect.DeepEqual(got, next) {
				t.Fatalf("Load after reopening = %+v, %v; want the state of the last Save", got, err)
			}
			if got := dirNames(t, dir); slices.ContainsFunc(got, func(n string) bool { return strings.Contains(n, ".tmp-") }) {
				t.Errorf("temporary files left: %q", got)
			}
		})
	}
}

// TestFileKeyDiskFaults: making the key file on a full disk or in a
// read-only directory fails, leaves no key file and no temporary file, and
// works once the fault ends.
func TestFileKeyDiskFaults(t *testing.T) {
	ctx := context.Background()
	for _, fault := range diskFaults {
		t.Run(fault.name, func(t *testing.T) {
			dir := t.TempDir()
			mountErr := mountSmall(t, dir, 64<<10)
			path := filepath.Join(dir, "state.json")
			f := openTestFile(t, path, nil)
			if err := f.Save(ctx, "app", &State{Sync: &Record{Status: Pending}}); err != nil {
				t.Fatal(err)
			}
			var end func()
			if mountErr == nil {
				t.Logf("real fault: %s on a 64 KiB tmpfs", fault.name)
				end = fault.real(t, dir)
			} else {
				t.Logf("injected fault: %v at step %q (%v)", fault.errno, fault.step, mountErr)
				f.failAt = func(step string) error {
					if step == fault.step {
						return fault.errno
					}
					return nil
				}
				end = func() { f.failAt = nil }
			}
			names := dirNames(t, dir)
			_, err := f.FingerprintKey(ctx)
			if !errors.Is(err, fault.errno) || !strings.Contains(err.Error(), path+".key") {
				t.Fatalf("FingerprintKey = %v, want %v naming the key file", err, fault.errno)
			}
			if got := dirNames(t, dir); !slices.Equal(got, names) {
				t.Errorf("failed key write left %q, want %q", got, names)
			}
			end()
			key, err := f.FingerprintKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, path+".key"); !bytes.Equal(got, key) {
				t.Fatal("key file does not hold the key")
			}
		})
	}
}

// lockHelperEnv makes the test binary, run again as a child by
// TestFileLockedAcrossProcesses, hold the state file it names.
const lockHelperEnv = "SECRETSYNC_STATE_LOCK_HELPER"

// TestFileLockedAcrossProcesses: while another process has the state file
// open, OpenFile is refused with ErrLocked (through a symbolic link too);
// once that process exits, or is killed, the file opens and holds what the
// other process saved.
func TestFileLockedAcrossProcesses(t *testing.T) {
	if p := os.Getenv(lockHelperEnv); p != "" {
		holdStateFile(p)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, end := range []string{"exit", "kill"} {
		t.Run(end, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			link := filepath.Join(t.TempDir(), "link.json")
			symlink(t, path, link)

			cmd := exec.Command(exe, "-test.run=^TestFileLockedAcrossProcesses$", "-test.count=1")
			cmd.Env = append(os.Environ(), lockHelperEnv+"="+path)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			ready := make(chan bool, 1)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if sc.Text() == "holding" {
						ready <- true
						_, _ = io.Copy(io.Discard, stdout)
						return
					}
				}
				ready <- false
			}()
			select {
			case ok := <-ready:
				if !ok {
					_ = cmd.Wait()
					t.Fatalf("child process ended without holding the state file: %s", stderr.String())
				}
			case <-time.After(time.Minute):
				t.Fatalf("child process did not hold the state file in a minute: %s", stderr.String())
			}

			for _, p := range []string{path, link} {
				if g, err := OpenFile(p, nil); !errors.Is(err, ErrLocked) {
					if g != nil {
						g.Close()
					}
					t.Fatalf("OpenFile(%s) while another process holds it = %v, want ErrLocked", p, err)
				}
			}

			if end == "exit" {
				stdin.Close()
				if err := cmd.Wait(); err != nil {
					t.Fatalf("child process: %v: %s", err, stderr.String())
				}
			} else {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				_ = cmd.Wait()
			}
			g := openTestFile(t, link, nil)
			st, err := g.Load(ctx, "app")
			if err != nil || st.Revision != 1 || st.Sync == nil || st.Sync.RunID != "child" {
				t.Fatalf("Load after the other process ended = %+v, %v; want its state", st, err)
			}
		})
	}
}

// holdStateFile is the child's side of TestFileLockedAcrossProcesses: it
// opens the state file, saves a state, says "holding" and keeps the file
// open until its stdin is closed.
func holdStateFile(path string) {
	ctx := context.Background()
	f, err := OpenFile(path, nil)
	if err == nil {
		err = f.Save(ctx, "app", &State{
			Baseline: map[string]conflict.Fingerprint{},
			Sync:     &Record{Status: Succeeded, RunID: "child", Time: time.Now().UTC()},
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(0)
}
