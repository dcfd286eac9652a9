// Package atomicfile replaces files atomically and takes advisory locks on
// them: the one home of the mechanism that the file state store, the
// dotenv destination and any other file-backed store share.
//
// # Writing
//
// [Write] and [WriteFunc] replace the file at a path so that a reader sees
// either its old content or its new content, never a mix, even across a
// crash or a power loss:
//
//  1. the path is resolved to the real file it names ([RealPath]): symbolic
//     links in its directories and the file itself if it is a link, also a
//     dangling one, so a link stays a link and its target is replaced (or
//     created);
//  2. the content goes to a temporary file ".<name>.tmp-*" in the same
//     directory, created with mode 0600 and then given its exact mode
//     (whatever the umask) before any content is in it;
//  3. the temporary file is synced and closed, renamed over the real file,
//     and the directory is synced.
//
// An error before the rename leaves the file as it was and no temporary
// file behind. Errors name the real path and wrap the system's error, so
// errors.Is(err, syscall.ENOSPC) and the like hold.
//
// # Locking
//
// [Lock] and [LockWait] take an exclusive advisory lock (flock) on a lock
// file, created with mode 0600 if needed and left on disk. The lock is held
// by an open descriptor: two Locks of one path exclude each other within
// one process too. The lock file is opened read-only, so that holding it
// does not keep its file system from being remounted read-only. On systems
// without flock (Windows, plan9, js, wasip1) locking does nothing and
// always succeeds; callers document what that means for them.
//
// Locks are advisory: they only keep out those who take them.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrLocked is returned, wrapped, by [Lock] when another descriptor (in
// this process or another) holds the lock.
var ErrLocked = errors.New("atomicfile: lock held by another process or descriptor")

// DefaultPerm is the mode of a file written with a zero Perm.
const DefaultPerm fs.FileMode = 0o600

// Options configures [WriteFunc]. The zero value (and a nil *Options) means
// the defaults.
type Options struct {
	// Perm is the permission bits of the new file; 0 means DefaultPerm.
	// Bits other than permissions are an error.
	Perm fs.FileMode
	// KeepExisting, when the file exists, gives the new content the
	// permission bits of the file it replaces instead of Perm and, on
	// systems with numeric owners, its owner and group too; if the owner
	// cannot be given (for want of the right to), the write fails rather
	// than take the file away from its owner.
	KeepExisting bool
	// FailAt, for tests, is called before each step of the write
	// ("create", "write", "sync", "close", "rename"); an error it returns
	// makes the write fail at that step as the system's error would.
	FailAt func(step string) error
}

// Write replaces the file at path with data, mode perm (0 means
// DefaultPerm), as described in the package documentation. It is
// WriteFunc with Options{Perm: perm}.
func Write(path string, data []byte, perm fs.FileMode) error {
	return WriteFunc(path, &Options{Perm: perm}, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc replaces the file at path with what write writes to w, as
// described in the package documentation. w is buffered: write need not
// flush it, and may ignore the errors of all but its last call, since a
// bufio.Writer keeps the first. An error from write aborts the replacement
// and is returned wrapped.
func WriteFunc(path string, opts *Options, write func(w *bufio.Writer) error) (err error) {
	if opts == nil {
		opts = &Options{}
	}
	if opts.Perm&^fs.ModePerm != 0 {
		return fmt.Errorf("replace %s: mode %v has bits other than permissions", path, opts.Perm)
	}
	real, err := RealPath(path)
	if err != nil {
		return fmt.Errorf("replace %s: resolve: %w", path, err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("replace %s: %w", real, err)
		}
	}()
	step := func(name string) error {
		if opts.FailAt == nil {
			return nil
		}
		return opts.FailAt(name)
	}
	perm := opts.Perm
	if perm == 0 {
		perm = DefaultPerm
	}
	var old fs.FileInfo
	if opts.KeepExisting {
		old, err = os.Stat(real)
		switch {
		case err == nil:
			perm = old.Mode().Perm()
		case errors.Is(err, fs.ErrNotExist):
			old = nil
		default:
			return err
		}
	}
	dir, base := filepath.Split(real)
	if err := step("create"); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+strings.ReplaceAll(base, "*", "_")+".tmp-*")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp uses 0600; Chmod makes the mode exact whatever the umask,
	// before any content is in the file.
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if old != nil {
		if err := keepOwner(tmp, old); err != nil {
			return err
		}
	}
	if err := step("write"); err != nil {
		return err
	}
	w := bufio.NewWriterSize(tmp, 64<<10)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := step("sync"); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := step("close"); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := step("rename"); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), real); err != nil {
		return err
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// maxLinks bounds the symbolic links followed by RealPath, as Linux's ELOOP
// does.
const maxLinks = 40

// RealPath returns the absolute path of the file that path names once every
// symbolic link is followed: links in its directories, and the file itself
// if it is a link, also a dangling one (then the result is its target,
// which does not exist yet). The directory of the result exists; a path
// whose directory does not exist is an error wrapping [fs.ErrNotExist].
func RealPath(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for range maxLinks {
		dir, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			return "", err
		}
		p = filepath.Join(dir, filepath.Base(p))
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			// dir has no links left, so ".." in target is lexical.
			target = filepath.Join(dir, target)
		}
		p = target
	}
	return "", fmt.Errorf("%s: more than %d symbolic links", path, maxLinks)
}
