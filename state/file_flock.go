//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package state

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile creates the lock file at path if needed and takes an exclusive
// flock on it without waiting. The returned func releases it.
//
// The lock file is opened read-only: flock needs no write access, and a
// descriptor open for writing would keep its file system from being
// remounted read-only while the File is open.
func lockFile(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state: %s is held by another process or File: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("state: lock file %s: %w", path, err)
	}
	return f.Close, nil
}

// syncDir flushes the directory entry changes of dir to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
