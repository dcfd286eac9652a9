//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package atomicfile

import (
	"context"
	"io/fs"
	"os"
)

// lockSupported reports whether Lock really locks on this system.
const lockSupported = false

// Lock does nothing where flock is not available, and always succeeds.
func Lock(string) (unlock func() error, err error) {
	return func() error { return nil }, nil
}

// LockWait does nothing where flock is not available, and succeeds unless
// ctx is done.
func LockWait(ctx context.Context, _ string) (unlock func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
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
