//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestFileMode(t *testing.T) {
	old := syscall.Umask(0) // the files must be 0600 whatever the umask
	defer syscall.Umask(old)

	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	// A state file made by hand with a loose mode is tightened by Save.
	if err := os.WriteFile(path, []byte(`{"format":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f := openTestFile(t, path, nil)
	if _, err := f.FingerprintKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(ctx, "app", sampleState(t)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".key", path + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", filepath.Base(p), fi.Mode())
		}
	}
}

func TestFileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	f, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(path, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenFile = %v, want ErrLocked", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := OpenFile(path, nil)
	if err != nil {
		t.Fatalf("OpenFile after Close = %v", err)
	}
	g.Close()
}
