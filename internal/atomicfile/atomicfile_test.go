package atomicfile

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symbolic links: %v", err)
	}
}

func mustBeLink(t *testing.T, link, target string) {
	t.Helper()
	got, err := os.Readlink(link)
	if err != nil {
		t.Fatalf("%s is no longer a link: %v", link, err)
	}
	if got != target {
		t.Fatalf("%s links to %s, want %s", link, got, target)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := Write(path, []byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "one" {
		t.Fatalf("content %q", got)
	}
	if err := Write(path, []byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "two" {
		t.Fatalf("content %q", got)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("directory holds %q", got)
	}
}

func TestWriteMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	mode := func() fs.FileMode {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode()
	}
	// Write sets the mode asked for, not the old file's.
	if err := Write(path, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 0o600 {
		t.Fatalf("mode %v, want 0600", m)
	}
	if err := Write(path, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 0o640 {
		t.Fatalf("mode %v, want 0640", m)
	}
	// KeepExisting keeps the old file's mode; a new file gets Perm.
	if err := WriteFunc(path, &Options{Perm: 0o600, KeepExisting: true}, func(w *bufio.Writer) error {
		_, err := w.WriteString("kept")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 0o640 {
		t.Fatalf("mode with KeepExisting %v, want 0640", m)
	}
	fresh := filepath.Join(dir, "fresh")
	if err := WriteFunc(fresh, &Options{Perm: 0o604, KeepExisting: true}, func(w *bufio.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode() != 0o604 {
		t.Fatalf("new file with KeepExisting: %v, %v; want mode 0604", fi, err)
	}
	if err := Write(path, nil, fs.ModeDir|0o600); err == nil {
		t.Fatal("Write with a mode other than permissions succeeded")
	}
}

func TestWriteFailures(t *testing.T) {
	for _, step := range []string{"create", "write", "sync", "close", "rename", "callback"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if err := Write(path, []byte("old"), 0); err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected")
			opts := &Options{FailAt: func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}}
			err := WriteFunc(path, opts, func(w *bufio.Writer) error {
				w.WriteString("new")
				if step == "callback" {
					return injected
				}
				return nil
			})
			if !errors.Is(err, injected) {
				t.Fatalf("WriteFunc = %v, want the injected error", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if got := readFile(t, path); got != "old" {
				t.Fatalf("failed write left %q", got)
			}
			if got := dirNames(t, dir); !slices.Equal(got, []string{"f"}) {
				t.Fatalf("failed write left %q", got)
			}
		})
	}
}

func TestWriteThroughLinks(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(sub, "real")
	if err := os.WriteFile(real, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A chain: link1 -> link2 -> sub/real, and a linked directory.
	symlink(t, "sub/real", filepath.Join(dir, "link2"))
	symlink(t, "link2", filepath.Join(dir, "link1"))
	symlink(t, "sub", filepath.Join(dir, "dirlink"))
	for i, p := range []string{"link1", "link2", "dirlink/real"} {
		data := []byte{byte('a' + i)}
		if err := Write(filepath.Join(dir, p), data, 0); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, real); got != string(data) {
			t.Fatalf("write through %s: target holds %q", p, got)
		}
	}
	mustBeLink(t, filepath.Join(dir, "link1"), "link2")
	mustBeLink(t, filepath.Join(dir, "link2"), "sub/real")
	mustBeLink(t, filepath.Join(dir, "dirlink"), "sub")
	if got := dirNames(t, sub); !slices.Equal(got, []string{"real"}) {
		t.Fatalf("sub holds %q", got)
	}

	// A dangling link: its target is created, the link kept.
	symlink(t, "sub/new", filepath.Join(dir, "dangling"))
	if err := Write(filepath.Join(dir, "dangling"), []byte("n"), 0); err != nil {
		t.Fatal(err)
	}
	mustBeLink(t, filepath.Join(dir, "dangling"), "sub/new")
	if got := readFile(t, filepath.Join(sub, "new")); got != "n" {
		t.Fatalf("target of the dangling link holds %q", got)
	}

	// A loop is an error, and nothing is written.
	symlink(t, "loop2", filepath.Join(dir, "loop1"))
	symlink(t, "loop1", filepath.Join(dir, "loop2"))
	if err := Write(filepath.Join(dir, "loop1"), []byte("x"), 0); err == nil {
		t.Fatal("Write through a loop of links succeeded")
	}
	mustBeLink(t, filepath.Join(dir, "loop1"), "loop2")
}

func TestRealPath(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	symlink(t, "a/../target", filepath.Join(dir, "link"))
	if err := os.Mkdir(filepath.Join(dir, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"link", "target"}, // dangling, with a lexical ".."
	} {
		got, err := RealPath(filepath.Join(dir, c.in))
		if err != nil || got != filepath.Join(dir, c.want) {
			t.Errorf("RealPath(%s) = %q, %v; want %q", c.in, got, err, filepath.Join(dir, c.want))
		}
	}
	if _, err := RealPath(filepath.Join(dir, "missing", "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RealPath in a missing directory = %v, want fs.ErrNotExist", err)
	}
}

func TestLock(t *testing.T) {
	if !lockSupported {
		t.Skip("no flock on this system")
	}
	path := filepath.Join(t.TempDir(), "f.lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock = %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LockWait(ctx, path); err != context.Canceled {
		t.Fatalf("LockWait with a done ctx while held = %v, want context.Canceled", err)
	}
	got := make(chan error, 1)
	var unlock2 func() error
	go func() {
		var err error
		unlock2, err = LockWait(context.Background(), path)
		got <- err
	}()
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("LockWait after unlock = %v", err)
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while LockWait holds it = %v, want ErrLocked", err)
	}
	if err := unlock2(); err != nil {
		t.Fatal(err)
	}
	unlock3, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after every unlock = %v", err)
	}
	_ = unlock3()
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode() != 0o600 {
			t.Fatalf("lock file: %v, %v; want mode 0600", fi, err)
		}
	}
}
