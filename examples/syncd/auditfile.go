package main

import (
	"fmt"
	"os"
	"path/filepath"
	gosync "sync"
)

// auditFile is the file that the audit block names, written by an
// audit.JSONLines. It is opened for appending, created with mode 0600, and
// opened again at its path by reopen, so that log rotation can move it
// away and a SIGHUP starts a new one. It is safe for concurrent use.
type auditFile struct {
	path string // absolute

	mu     gosync.Mutex
	f      *os.File
	closed bool
}

// openAuditFile opens (or creates) the audit file at path.
func openAuditFile(path string) (*auditFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("audit: file %s: %w", path, err)
	}
	f, err := openAppend(abs)
	if err != nil {
		return nil, err
	}
	return &auditFile{path: abs, f: f}, nil
}

// openAppend opens path for appending, creating it with mode 0600. An
// existing file that others may read is narrowed to 0600: audit events hold
// no value, but they name every key and who changed it.
func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		err = f.Chmod(0o600)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit: file %s: %w", path, err)
	}
	return f, nil
}

// Write appends p, one event line, to the file.
func (a *auditFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, fmt.Errorf("audit: file %s: %w", a.path, os.ErrClosed)
	}
	return a.f.Write(p)
}

// reopen opens the path again and writes there from now on; the file that
// was open is closed. When the path cannot be opened, the open file stays
// in use and the error is returned.
func (a *auditFile) reopen() error {
	f, err := openAppend(a.path)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		_ = f.Close()
		return fmt.Errorf("audit: file %s: %w", a.path, os.ErrClosed)
	}
	old := a.f
	a.f = f
	return old.Close()
}

// Close closes the file; later writes fail.
func (a *auditFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	return a.f.Close()
}

// sameAuditFile reports whether the audit block c names the file a has open.
func sameAuditFile(a *auditFile, c *AuditConfig) bool {
	if a == nil || c == nil {
		return false
	}
	abs, err := filepath.Abs(c.File)
	return err == nil && abs == a.path
}
