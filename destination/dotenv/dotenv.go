// Package dotenv is a destination over a dotenv (.env) file, for syncing
// secrets from Vault into the environment file of an application.
//
// A [*File] is a [destination.Destination]: List reads the file, Apply
// writes it with check-and-set. Comments, blank lines, the order of the
// entries and every line that a change does not name are kept as they are.
//
// # Format
//
// The file is read line by line:
//
//	# a comment, and blank lines, are kept as they are
//	DB_HOST=db.internal          # an unquoted value, blanks trimmed
//	export DB_USER=app           # an optional "export " prefix
//	DB_PASS='p@ss #1 $HOME'      # single quotes: literal text
//	TLS_KEY="line 1\nline 2"     # double quotes: escapes
//
// A key matches [A-Za-z_][A-Za-z0-9_.-]*; blanks around it and around "="
// are allowed. An unquoted value runs to the end of the line, without the
// blanks around it and without an inline comment, which starts at a "#"
// that follows a blank ("a#b" is a value, "a #b" is "a" and a comment). A
// single-quoted value is taken literally. A double-quoted value knows the
// escapes \n, \r, \t, \", \\, \$ and \`; any other backslash is kept as it
// is. A quoted value may span several lines; a line break inside it reads
// as "\n". After a closing quote only blanks and a comment may follow.
// Lines may end with "\n" or "\r\n", and a leading UTF-8 byte order mark
// is ignored.
//
// When a key appears more than once, the last entry wins, as it does when
// a shell sources the file. A put rewrites that last entry; a delete
// removes every entry of the key, so that no earlier one comes back.
//
// Apply writes a value bare when it is made only of letters, digits and
// _-.,/:@%+= and otherwise in double quotes, escaping \n, \r, ", \, $ and
// ` so that the value stays on one line, reads back exactly as it was
// written (any bytes, not only UTF-8) and is not expanded when a POSIX
// shell sources the file. A rewritten entry keeps its indentation, its
// "export " prefix and its trailing comment. New keys are appended at the
// end of the file, with the file's line ending.
//
// A line that is not a blank line, a comment or an assignment makes List
// and Apply fail with a [*ParseError], which gives the line number and
// never any text of the file. Nothing is written to a file that does not
// parse.
//
// # Versions
//
// The version of a key is a digest of the key and its value: 16 hex digits
// of HMAC-SHA-256 under a random key made by [Open]. So any change of a
// value, by Apply or by an editor, changes its version, and the check of
// an Apply compares what is in the file now with what was read. Writing a
// value that a key had before gives back the version it had then, which is
// harmless: the content is the same. The random key keeps versions (which
// the engine may log) from being used to test guesses of a value; the
// versions of one File therefore mean nothing to another File.
//
// # Writes
//
// Each Apply that changes something writes the whole file once: to a
// temporary file in the same directory, which is synced, given the mode
// (and, where the system has owners, the owner and group) of the file it
// replaces or [Options.Mode] for a new file, renamed over the file, after
// which the directory is synced. If the owner cannot be given (for want of
// the right to), the write fails rather than take the file away from its
// owner. A reader therefore sees the file either
// as it was or with every change of the Apply, never a mix; this is why
// [File.Capabilities] reports Atomic. If the path is a symbolic link (or a
// chain of them, or a path through linked directories), the file it points
// to is replaced and the link is kept; with CreateIfMissing, a link that
// dangles gets its target created by the first Apply that puts a key. An
// Apply that changes nothing (a put of the value a key already has, a
// delete of an absent key) does not write the file.
//
// # Locking
//
// Apply reads the file again, checks every change and writes, all while
// holding a mutex of the File and an advisory lock: an exclusive flock on
// the file's path + ".lock", which is created (mode 0600) next to the file
// and left there. When the path is a symbolic link, the lock is next to the
// real file it names, so that Files opened through the link and through
// its target take the same lock. So Files in one process and processes
// that take the same lock never overwrite each other's changes. An editor
// or a program that does not take the lock can still change the file at
// any time: a change it makes before Apply reads the file shows up as a
// conflict, but one it makes between that read and the rename is lost. On systems without flock
// only the mutex is taken. List takes no lock: thanks to the rename it
// always reads a whole file.
//
// # Files
//
// For a dotenv file at path, a File uses:
//
//	path         the dotenv file: 0600 (Options.Mode) when it creates it
//	path.lock    the advisory lock, on systems that have flock
//	.path.tmp-*  a temporary file during a write, renamed over path
//
// where path is the real file once symbolic links are followed.
package dotenv

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/atomicfile"
)

// DefaultMode is the mode of a dotenv file that a File creates, unless
// [Options.Mode] says otherwise.
const DefaultMode fs.FileMode = 0o600

// Options configures [Open]. The zero value (and a nil *Options) means the
// defaults.
type Options struct {
	// Mode is the permission bits of the file when Apply creates it;
	// 0 means DefaultMode (0600). An existing file keeps its own mode.
	Mode os.FileMode
	// CreateIfMissing lets the file be absent: it then lists as empty and
	// is created by the first Apply that puts a key. When false, Open
	// fails if the file does not exist, and so do List and Apply if it is
	// removed later.
	CreateIfMissing bool
}

// File is a destination.Destination over one dotenv file. It keeps nothing
// of the file in memory between calls: every List and Apply reads it.
//
// A File is safe for concurrent use by multiple goroutines; Apply calls are
// serialized. Use [Open] to make one; it needs no Close.
type File struct {
	path   string // absolute
	mode   fs.FileMode
	create bool
	verKey []byte        // the HMAC key of versions
	sem    chan struct{} // the mutex of Apply, held when full

	// failAt, for tests, is called at each step of a write and makes it
	// fail with the error it returns.
	failAt func(step string) error
}

var (
	_ destination.Destination = (*File)(nil)
	_ destination.Describer   = (*File)(nil)
)

// Open returns a File for the dotenv file at path, which is made absolute.
// A nil opts means the defaults.
//
// Open checks the path and reads the file once: it fails if path is empty,
// names something other than a regular file, or does not exist (unless
// opts.CreateIfMissing is set, in which case its directory must exist),
// and returns a [*ParseError] if the file cannot be parsed. A missing file
// is reported with an error wrapping [fs.ErrNotExist].
func Open(path string, opts *Options) (*File, error) {
	if opts == nil {
		opts = &Options{}
	}
	switch {
	case path == "":
		return nil, errors.New("dotenv: open: empty path")
	case strings.IndexByte(path, 0) >= 0:
		return nil, errors.New("dotenv: open: path contains a NUL byte")
	case opts.Mode&^fs.ModePerm != 0:
		return nil, fmt.Errorf("dotenv: open %s: Options.Mode %v has bits other than permissions", path, opts.Mode)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("dotenv: open %s: %w", path, err)
	}
	mode := opts.Mode
	if mode == 0 {
		mode = DefaultMode
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("dotenv: open %s: version key: %w", abs, err)
	}
	f := &File{
		path:   abs,
		mode:   mode,
		create: opts.CreateIfMissing,
		verKey: key,
		sem:    make(chan struct{}, 1),
	}
	fi, err := os.Stat(abs)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("dotenv: open %s: not a regular file (%v)", abs, fi.Mode().Type())
	case errors.Is(err, fs.ErrNotExist) && f.create:
		dir := filepath.Dir(abs)
		di, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("dotenv: open %s: directory: %w", abs, err)
		}
		if !di.IsDir() {
			return nil, fmt.Errorf("dotenv: open %s: %s is not a directory", abs, dir)
		}
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("dotenv: open: %w", err)
	}
	if _, _, err := f.read(); err != nil {
		return nil, err
	}
	return f, nil
}

// read reads and parses the file; exists is false for a missing file when
// CreateIfMissing is set.
func (f *File) read() (doc *document, exists bool, err error) {
	data, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && f.create:
		return &document{index: map[string]int{}, eol: "\n"}, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("dotenv: read: %w", err)
	}
	doc, err = parse(f.path, string(data))
	if err != nil {
		return nil, false, err
	}
	return doc, true, nil
}

// version returns the version of key holding value.
func (f *File) version(key, value string) string {
	mac := hmac.New(sha256.New, f.verKey)
	mac.Write([]byte(key))
	mac.Write([]byte{0})
	mac.Write([]byte(value))
	return hex.EncodeToString(mac.Sum(nil)[:8])
}

// List reads the file and returns every key with its value and version.
// It returns a [*ParseError] if the file cannot be parsed, an error
// wrapping [fs.ErrNotExist] if it is missing (and CreateIfMissing is not
// set), and ctx.Err() if ctx is done. Retrying is safe.
func (f *File) List(ctx context.Context) (map[string]destination.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc, _, err := f.read()
	if err != nil {
		return nil, err
	}
	out := make(map[string]destination.Secret, len(doc.index))
	for k, v := range doc.values() {
		out[k] = destination.Secret{Value: v, Version: f.version(k, v)}
	}
	return out, nil
}

// Apply applies each change whose key still has the expected version, and
// writes the file once if anything changed (see the package
// documentation).
//
// Per change, it returns nil, a [*destination.KeyError] wrapping
// [destination.ErrConflict] when the key has another version than Expect
// (the other changes still apply; read again and retry), or one wrapping
// [destination.ErrInvalidKey] for a key that does not match
// [A-Za-z_][A-Za-z0-9_.-]* (retrying is not useful). Changes are applied in
// order, so a later change of the same key sees an earlier one.
//
// The call fails as a whole, with nothing written, if ctx is done before
// the file is read (with ctx.Err(), also while waiting for the lock), if
// the file cannot be read or parsed (a [*ParseError]), or if it cannot be
// written; in the last case the file holds either its old content or the
// new one, and retrying is safe.
func (f *File) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	errs := make([]error, len(changes))
	if len(changes) == 0 {
		return errs, nil
	}
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-f.sem }()
	// The lock and the write go to the real file that the path names now.
	real, err := atomicfile.RealPath(f.path)
	if err != nil {
		return nil, fmt.Errorf("dotenv: resolve %s: %w", f.path, err)
	}
	unlock, err := atomicfile.LockWait(ctx, real+".lock")
	if err != nil {
		if err == ctx.Err() {
			return nil, err
		}
		return nil, fmt.Errorf("dotenv: %w", err)
	}
	defer func() { _ = unlock() }()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc, _, err := f.read()
	if err != nil {
		return nil, err
	}
	changed := false
	for i, c := range changes {
		var ch bool
		ch, errs[i] = f.apply(doc, c)
		changed = changed || ch
	}
	if !changed {
		return errs, nil
	}
	if err := f.write(real, doc.render()); err != nil {
		return nil, fmt.Errorf("dotenv: write: %w", err)
	}
	return errs, nil
}

// apply applies one change to doc, and reports whether doc changed.
func (f *File) apply(doc *document, c destination.Change) (bool, error) {
	op := "put"
	if c.Delete {
		op = "delete"
	}
	fail := func(err error) error { return &destination.KeyError{Op: op, Key: c.Key, Err: err} }
	if !validKey(c.Key) {
		return false, fail(fmt.Errorf("%w: a dotenv key must match [A-Za-z_][A-Za-z0-9_.-]*", destination.ErrInvalidKey))
	}
	cur, ok := doc.get(c.Key)
	var have string
	if ok {
		have = f.version(c.Key, cur)
	}
	switch {
	case c.Delete && !ok:
		return false, nil // already gone: the goal is reached
	case !ok && c.Expect != "":
		return false, fail(fmt.Errorf("%w: key is absent, expected version %q", destination.ErrConflict, c.Expect))
	case ok && c.Expect != have:
		return false, fail(fmt.Errorf("%w: have version %q, expected %q", destination.ErrConflict, have, c.Expect))
	case c.Delete:
		doc.remove(c.Key)
		return true, nil
	case ok && cur == c.Value:
		return false, nil
	}
	doc.set(c.Key, c.Value)
	return true, nil
}

// write replaces the file, at its real path, with data atomically: see the
// package documentation.
func (f *File) write(real string, data []byte) error {
	return atomicfile.WriteFunc(real, &atomicfile.Options{Perm: f.mode, KeepExisting: true, FailAt: f.failAt}, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Capabilities reports that Apply is atomic: all the changes of one call
// are written to the file at once.
func (f *File) Capabilities() destination.Capabilities {
	return destination.Capabilities{Atomic: true}
}

// String returns the path of the file, never a value.
func (f *File) String() string { return "dotenv.File(" + f.path + ")" }

// GoString is like String.
func (f *File) GoString() string { return f.String() }

// Path returns the absolute path of the dotenv file.
func (f *File) Path() string { return f.path }
