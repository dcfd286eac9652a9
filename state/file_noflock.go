//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package state

import "os"

// lockFile does nothing where flock is not available: a state file must
// still not be shared (see File).
func lockFile(string) (func() error, error) {
	return func() error { return nil }, nil
}

// syncDir flushes the directory entry changes of dir to disk where the
// system allows it; some (Windows) cannot sync a directory, so errors are
// ignored here.
func syncDir(dir string) error {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
