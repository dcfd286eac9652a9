//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package dotenv

import (
	"context"
	"io/fs"
	"os"
)

// lockFile does nothing where flock is not available: Apply calls of one
// File are still serialized, but nothing keeps other processes out (see
// the package documentation).
func lockFile(context.Context, string) (func() error, error) {
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

// keepOwner does nothing where files have no numeric owner.
func keepOwner(*os.File, fs.FileInfo) error { return nil }
