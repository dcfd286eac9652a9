//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package state

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/secretsync/secretsync/internal/fingerprint"
)

func TestFileSymlink(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// setup makes the link in linkDir and returns the link's path,
		// the real state file's path and the link's target as written.
		setup func(t *testing.T, linkDir, realDir string) (link, real string)
		// exists: the real state file exists before the first open.
		exists bool
	}{
		{"absolute", func(t *testing.T, linkDir, realDir string) (string, string) {
			real := filepath.Join(realDir, "real.json")
			symlink(t, real, filepath.Join(linkDir, "state.json"))
			return filepath.Join(linkDir, "state.json"), real
		}, true},
		{"relative", func(t *testing.T, linkDir, realDir string) (string, string) {
			real := filepath.Join(realDir, "real.json")
			rel, err := filepath.Rel(linkDir, real)
			if err != nil {
				t.Fatal(err)
			}
			symlink(t, rel, filepath.Join(linkDir, "state.json"))
			return filepath.Join(linkDir, "state.json"), real
		}, true},
		{"dangling", func(t *testing.T, linkDir, realDir string) (string, string) {
			real := filepath.Join(realDir, "new.json")
			symlink(t, real, filepath.Join(linkDir, "state.json"))
			return filepath.Join(linkDir, "state.json"), real
		}, false},
		{"chain", func(t *testing.T, linkDir, realDir string) (string, string) {
			real := filepath.Join(realDir, "real.json")
			symlink(t, real, filepath.Join(linkDir, "second"))
			symlink(t, "second", filepath.Join(linkDir, "state.json"))
			return filepath.Join(linkDir, "state.json"), real
		}, true},
		{"through a linked directory", func(t *testing.T, linkDir, realDir string) (string, string) {
			// linkDir/d -> realDir/sub, and realDir/sub/state.json ->
			// ../real.json, which is realDir/real.json (not linkDir/real.json,
			// as a lexical reading of linkDir/d/../real.json would say).
			sub := filepath.Join(realDir, "sub")
			if err := os.Mkdir(sub, 0o700); err != nil {
				t.Fatal(err)
			}
			symlink(t, sub, filepath.Join(linkDir, "d"))
			symlink(t, "../real.json", filepath.Join(sub, "state.json"))
			return filepath.Join(linkDir, "d", "state.json"), filepath.Join(realDir, "real.json")
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			linkDir, realDir := t.TempDir(), t.TempDir()
			link, real := tt.setup(t, linkDir, realDir)
			target, err := os.Readlink(link)
			if err != nil {
				t.Fatal(err)
			}
			old := sampleState(t)
			if tt.exists {
				f := openTestFile(t, real, nil)
				if _, err := f.FingerprintKey(ctx); err != nil {
					t.Fatal(err)
				}
				if err := f.Save(ctx, "app", old); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			linkNames := dirNames(t, linkDir)

			f := openTestFile(t, link, nil)
			key, err := f.FingerprintKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Both ways in take the same lock.
			if g, err := OpenFile(real, nil); !errors.Is(err, ErrLocked) {
				if g != nil {
					g.Close()
				}
				t.Fatalf("OpenFile(real path) while open through the link = %v, want ErrLocked", err)
			}
			if g, err := OpenFile(link, nil); !errors.Is(err, ErrLocked) {
				if g != nil {
					g.Close()
				}
				t.Fatalf("second OpenFile(link) = %v, want ErrLocked", err)
			}
			st := &State{}
			if tt.exists {
				if st, err = f.Load(ctx, "app"); err != nil {
					t.Fatal(err)
				}
			}
			st.Initialized = !st.Initialized
			if err := f.Save(ctx, "app", st); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			mustBeLink(t, link, target)
			if got := dirNames(t, linkDir); !slices.Equal(got, linkNames) {
				t.Errorf("the link's directory holds %q, want %q (lock, key and temporary files belong next to the real file)", got, linkNames)
			}
			for _, p := range []string{real, real + ".key", real + ".lock"} {
				if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("%s: %v, want a regular file", p, err)
				}
			}
			// The target holds the new state: read through the real path.
			g := openTestFile(t, real, nil)
			got, err := g.Load(ctx, "app")
			if err != nil || !reflect.DeepEqual(got, st) {
				t.Fatalf("Load through the real path = %+v, %v; want %+v", got, err, st)
			}
			if k, err := g.FingerprintKey(ctx); err != nil || !bytes.Equal(k, key) {
				t.Fatalf("FingerprintKey through the real path = %v; want the key made through the link", err)
			}
		})
	}
}

func TestFileSymlinkedKeyFile(t *testing.T) {
	ctx := context.Background()
	for _, dangling := range []bool{false, true} {
		name := map[bool]string{false: "existing", true: "dangling"}[dangling]
		t.Run(name, func(t *testing.T) {
			dir, keyDir := t.TempDir(), t.TempDir()
			path := filepath.Join(dir, "state.json")
			keyTarget := filepath.Join(keyDir, "fingerprint.key")
			want := bytes.Repeat([]byte{9}, fingerprint.KeySize)
			if !dangling {
				if err := os.WriteFile(keyTarget, want, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			symlink(t, keyTarget, path+".key")

			f := openTestFile(t, path, nil)
			key, err := f.FingerprintKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !dangling && !bytes.Equal(key, want) {
				t.Fatal("FingerprintKey did not read the key through the link")
			}
			if err := f.Save(ctx, "app", sampleState(t)); err != nil {
				t.Fatal(err)
			}
			mustBeLink(t, path+".key", keyTarget)
			if got := readFile(t, keyTarget); !bytes.Equal(got, key) {
				t.Fatal("the link's target does not hold the key")
			}
			if got := dirNames(t, keyDir); !slices.Equal(got, []string{"fingerprint.key"}) {
				t.Errorf("the key's directory holds %q", got)
			}
		})
	}
}

// TestFileKeyMissingNextToLink: a key file left next to the link (where
// versions before the symbolic link rule kept it) is named in the error,
// and never replaced by a new key.
func TestFileKeyMissingNextToLink(t *testing.T) {
	ctx := context.Background()
	linkDir, realDir := t.TempDir(), t.TempDir()
	real, link := filepath.Join(realDir, "state.json"), filepath.Join(linkDir, "state.json")
	f := openTestFile(t, real, nil)
	if err := f.Save(ctx, "app", sampleState(t)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	symlink(t, real, link)
	if err := os.WriteFile(link+".key", make([]byte, fingerprint.KeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	g := openTestFile(t, link, nil)
	_, err := g.FingerprintKey(ctx)
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("FingerprintKey = %v, want a missing key file", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(link+".key")) {
		t.Fatalf("error %q does not name the key file next to the link", err)
	}
	if _, err := os.Stat(real + ".key"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a new key file was made: %v", err)
	}
}

// TestFileSealedKeyMigrationSymlink: sealing a plain key file in place
// through a symbolic link replaces the link's target and keeps the link.
func TestFileSealedKeyMigrationSymlink(t *testing.T) { testSealedKeyMigration(t, true) }
