package state

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/secretsync/secretsync/internal/atomicfile"
	"github.com/secretsync/secretsync/internal/fingerprint"
)

// FileFormat is the version of the state file layout that [File] reads and
// writes. A file with another version is refused with an error wrapping
// [ErrUnknownFormat].
const FileFormat = 1

// Errors of [File], besides the sentinels of [Store].
var (
	// ErrUnknownFormat: the state file has a format version this package
	// does not know, most likely written by a newer version of secretsync.
	// It comes inside a [*CorruptError], so ErrCorrupt holds too.
	ErrUnknownFormat = errors.New("state: unknown state file format")
	// ErrLocked: another process, or another File in this process, has the
	// state file open.
	ErrLocked = errors.New("state: state file in use")
	// ErrClosed: the File was closed.
	ErrClosed = errors.New("state: file store closed")
)

// CorruptError reports a state file or key file that cannot be used as it
// is. errors.Is(err, ErrCorrupt) holds for it; Err, when set, is the cause
// ([ErrUnknownFormat], a JSON error, [ErrKeySize] for a key file
// of the wrong size, [fs.ErrNotExist] for a key file that is missing while
// the state holds baselines).
//
// The store never repairs or resets such a file: move it aside or restore
// it from a backup, then open the store again.
type CorruptError struct {
	Path   string // the file: the state file or its key file
	Reason string // what is wrong, without any value
	Err    error  // the cause, or nil
}

func (e *CorruptError) Error() string {
	s := "state: " + e.Path + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is [ErrCorrupt].
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the cause.
func (e *CorruptError) Unwrap() error { return e.Err }

// FileOptions configures [OpenFile]. The zero value (and a nil
// *FileOptions) means the defaults.
type FileOptions struct {
	// Key is the fingerprint key, exactly 32 bytes (see
	// [Store.FingerprintKey]). When set, the key file is neither read nor
	// written and the caller keeps the key, for example in a secret manager.
	// When nil, the key is kept in the key file next to the state file.
	Key []byte
	// Sealer, when set, seals the fingerprint key: the key file holds only
	// the key sealed by it, never the key itself, so that the state file
	// and the key file together no longer let anyone test guesses of a
	// value. Each File unseals the key once, on the first FingerprintKey
	// call, and keeps it in memory. See "Sealed key" on [File]. Key and
	// Sealer cannot both be set.
	Sealer KeySealer
}

// File is the embedded default [Store]: the state of every sync in one JSON
// file, replaced atomically on each Save.
//
// # Files
//
// For a state file at path, File uses:
//
//	path         the state of every sync, mode 0600
//	path.key     the fingerprint key: 32 random bytes, or with
//	             FileOptions.Sealer the key sealed (see "Sealed key"), mode
//	             0600, made on the first FingerprintKey call (unless
//	             FileOptions.Key is set)
//	path.lock    an advisory lock (flock) held while the File is open, on
//	             systems that have flock; it stays on disk after Close
//	.path.tmp-*  a temporary file during a Save, renamed over path
//
// The state file holds sync names, key names, fingerprints, revisions,
// statuses, messages, run ids and times: never a secret value. Anyone who
// reads both the state file and the key file can test guesses of a value
// against its fingerprint, so both are created with mode 0600; keep the
// key file out of backups that are less protected than the secrets, give
// the key through FileOptions.Key, or seal it with FileOptions.Sealer.
//
// The state file looks like this (one sync per line):
//
//	{"format":1,"syncs":{
//	"app-prod":{"revision":3,"baseline":{"DB_URL":"<base64 fingerprint>"},"sync":{"status":"succeeded","time":"…","run_id":"…"},"initialized":true}
//	}}
//
// # Symbolic links
//
// If path is a symbolic link (or a chain of them, or a path through linked
// directories), OpenFile resolves it once to the real file it names, also
// when the link dangles (then its target is created by the first Save),
// and uses that real path for everything above: the lock file, the key file
// and the temporary file are next to the real file, and Save renames over
// the real file. So the link stays a link and keeps naming the current
// state, and opening the state through the link and through its target at
// the same time is refused with [ErrLocked] (both take the same lock).
// A key file that is itself a symbolic link is read through it, and when the
// key file is written (created, sealed or rewrapped) its target is
// replaced, never the link. Before this rule the key file was looked up
// next to the link: if FingerprintKey reports it missing, move it next to
// the real state file.
//
// # Sealed key
//
// With FileOptions.Sealer (for example vaultkv.Transit, a Vault Transit
// key), the key file holds the key sealed, as one line of JSON:
//
//	{"format":1,"sealer":"vault-transit","sealed":"vault:v1:…"}
//
// format is [KeyFileFormat], sealer the sealer's Kind and sealed what its
// Seal returned. A plain key file is exactly 32 bytes; a sealed one is
// longer and starts with '{', which is how they are told apart.
//
//   - A new key is sealed, checked to unseal to itself, and written.
//   - A plain key file found while a sealer is configured is sealed in
//     place (migration): the key is sealed, checked, and the key file is
//     replaced atomically, so it holds the plain key or the sealed key,
//     never neither. If the sealer fails, the plain key file is left as it
//     is and FingerprintKey fails with a [*SealError].
//   - A sealed key file is unsealed once per File; the key stays in memory
//     until Close.
//   - Losing access to the sealer (denied, its key deleted, the sealed key
//     unreadable) makes FingerprintKey fail with a [*SealError]: never a
//     new key, never a reset. Restore the access and call it again.
//   - A sealed key file opened without a sealer, or with a sealer of
//     another kind, is an error wrapping [ErrSealerMismatch].
//   - After the sealing key is rotated, [File.RewrapKey] seals the key again
//     under the newest version and replaces the key file atomically.
//
// Backups of the state file and the key file then reveal nothing without
// access to the sealer; moving back from a sealed key to a plain one means
// writing the key (from FingerprintKey) into the key file by hand.
//
// # Durability
//
// Save writes the whole file to a temporary file in the same directory,
// syncs it, renames it over the state file and syncs the directory, so the
// state file always holds either the old or the new content, never a mix.
// If Save fails with an error other than ErrConflict, what Load returns is
// unchanged; the state file may hold the old or the new content, and the next
// successful Save rewrites it whole. A write that fails before the rename
// (a full disk, a read-only directory) leaves the state file as it was and
// no temporary file behind; its error names the state file and wraps the
// system's error (errors.Is(err, syscall.ENOSPC) or syscall.EROFS holds),
// and once space is freed or the directory is writable again the next Save
// succeeds.
//
// A file that cannot be read (invalid JSON, an empty or truncated file, wrong
// types, an unknown format version) is reported with a [*CorruptError] and
// is never reset: an empty baseline would turn every key into a conflict or a
// deletion. A missing state file means that no sync has saved state yet.
//
// # Concurrency
//
// OpenFile reads the state file once and keeps it in memory; Load reads from
// memory and Save writes through to the file. So one state file must be used
// by one File at a time: several processes, or several Files in one process,
// must not share it. Where flock is available, OpenFile enforces this with
// the lock file and returns an error wrapping [ErrLocked]. To share state
// between replicas, use the store kept in Vault KV.
//
// A File is safe for concurrent use by multiple goroutines.
type File struct {
	// path is the real state file (symbolic links resolved); keyPath is
	// path + ".key", which may itself be a link; given is the path that
	// OpenFile was given, made absolute.
	path, keyPath, given string

	mu     sync.Mutex // guards closed and syncs
	closed bool
	unlock func() error
	syncs  map[string]*fileEntry
	docs   map[string]*docsFileDoc // read on first use; see LoadDocument

	// keyMu guards key and the key file; it is held for a whole
	// FingerprintKey or RewrapKey call, and taken before mu, never after.
	keyMu  sync.Mutex
	key    []byte
	sealer KeySealer

	// failAt, for tests, is called at each step of an atomic write and
	// makes it fail with the error it returns.
	failAt func(step string) error
}

// fileEntry is the state of one sync with its encoding in the file.
type fileEntry struct {
	st  *State
	raw []byte
}

var _ Store = (*File)(nil)

// OpenFile opens the state file at path, reading it if it exists, and takes
// the lock file. A nil opts means the defaults. It returns a
// [*CorruptError] if the file exists but cannot be used, an error wrapping
// [ErrLocked] if another File has it open, and an error wrapping
// [ErrKeySize] if opts.Key is set but not 32 bytes long.
//
// A path that is a symbolic link is resolved to the file it names (see
// "Symbolic links" above). The directory must exist. Call Close when done.
func OpenFile(path string, opts *FileOptions) (*File, error) {
	if path == "" {
		return nil, errors.New("state: open file: empty path")
	}
	given, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state: open file: %w", err)
	}
	abs, err := atomicfile.RealPath(given)
	if err != nil {
		return nil, fmt.Errorf("state: open file %s: %w", given, err)
	}
	f := &File{path: abs, keyPath: abs + ".key", given: given}
	if opts != nil && opts.Key != nil {
		if len(opts.Key) != fingerprint.KeySize {
			return nil, fmt.Errorf("state: open file: FileOptions.Key has %d bytes: %w", len(opts.Key), fingerprint.ErrKeySize)
		}
		if opts.Sealer != nil {
			return nil, errors.New("state: open file: FileOptions.Key and FileOptions.Sealer are both set (a sealer seals the key file, which Key replaces)")
		}
		f.key = bytes.Clone(opts.Key)
	}
	if opts != nil && opts.Sealer != nil {
		if opts.Sealer.Kind() == "" {
			return nil, errors.New("state: open file: FileOptions.Sealer has an empty Kind")
		}
		f.sealer = opts.Sealer
	}
	unlock, err := atomicfile.Lock(abs + ".lock")
	if errors.Is(err, atomicfile.ErrLocked) {
		return nil, fmt.Errorf("state: %s.lock is held by another process or File: %w", abs, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	syncs, err := readStateFile(abs)
	if err != nil {
		_ = unlock()
		return nil, err
	}
	f.syncs = syncs
	f.unlock = unlock
	return f, nil
}

// Load returns a copy of the state of the named sync, or an error wrapping
// [ErrNotFound] if it was never saved. It reads from memory, not from the
// file. A done ctx returns ctx.Err(); after Close, [ErrClosed].
func (f *File) Load(ctx context.Context, name string) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	e, ok := f.syncs[name]
	if !ok {
		return nil, fmt.Errorf("state: load %q: %w", name, ErrNotFound)
	}
	return e.st.Clone(), nil
}

// Save replaces the state of the named sync if st.Revision is the stored
// revision (0 for the first save), writes the state file atomically, and
// sets st.Revision to the new revision. The state of the other syncs is kept.
//
// On a revision mismatch it returns an error wrapping [ErrConflict] and
// changes nothing; Load again before retrying. Other errors (encoding, I/O)
// leave what Load returns unchanged, and a retry with the same st is safe.
// The sync name and the keys of Baseline and Conflicts must be valid UTF-8,
// which JSON requires.
// A done ctx returns ctx.Err() before any I/O; after Close, [ErrClosed].
func (f *File) Save(ctx context.Context, name string, st *State) error {
	if st == nil {
		return fmt.Errorf("state: save %q: nil state", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.closed {
		return ErrClosed
	}
	var cur int64
	if e, ok := f.syncs[name]; ok {
		cur = e.st.Revision
	}
	if st.Revision != cur {
		return fmt.Errorf("state: save %q: revision %d, stored revision %d: %w", name, st.Revision, cur, ErrConflict)
	}
	if err := checkUTF8(name, st); err != nil {
		return fmt.Errorf("state: save %q: %w", name, err)
	}
	c := st.Clone()
	c.Revision = cur + 1
	raw, err := encodeJSON(c)
	if err != nil {
		return fmt.Errorf("state: save %q: %w", name, err)
	}
	names := make([]string, 0, len(f.syncs)+1)
	for n := range f.syncs {
		names = append(names, n)
	}
	if _, ok := f.syncs[name]; !ok {
		names = append(names, name)
	}
	slices.Sort(names)
	err = atomicfile.WriteFunc(f.path, &atomicfile.Options{FailAt: f.failAt}, func(w *bufio.Writer) error {
		fmt.Fprintf(w, `{"format":%d,"syncs":{`, FileFormat)
		for i, n := range names {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteByte('\n')
			qn, err := encodeJSON(n)
			if err != nil {
				return err
			}
			w.Write(qn)
			w.WriteByte(':')
			if n == name {
				w.Write(raw)
			} else {
				w.Write(f.syncs[n].raw)
			}
		}
		_, err := w.WriteString("\n}}\n")
		return err // bufio.Writer errors are sticky: this is the first one
	})
	if err != nil {
		return fmt.Errorf("state: save %q: %w", name, err)
	}
	f.syncs[name] = &fileEntry{st: c, raw: raw}
	st.Revision = c.Revision
	return nil
}

// FingerprintKey returns a copy of the fingerprint key: FileOptions.Key if
// it was set, otherwise the key kept in the key file, which is created on
// the first call if absent. With FileOptions.Sealer, the key file holds the
// key sealed: the first successful call of each File unseals it (one
// request to the sealer) and later calls return the key kept in memory; a
// plain key file is sealed in place first (see "Sealed key" on File).
//
// If the key file is missing while the state file holds baselines, it
// returns a [*CorruptError] wrapping [fs.ErrNotExist] instead of making a
// new key, which would make every baseline mismatch: restore the key file.
// A key file that is neither a 32-byte key nor a sealed key file is a
// [*CorruptError] too. A sealer that fails (access lost, the sealing key
// deleted, a sealed key it cannot open) gives a [*SealError] (errors.Is
// [ErrSealer]); a sealed key file without a sealer, or with another kind of
// sealer, an error wrapping [ErrSealerMismatch]. In all these cases the key
// file is left as it is and no new key is made; a later call tries again.
// A done ctx returns ctx.Err() before any I/O; after Close, [ErrClosed].
//
// Load and Save do not wait for FingerprintKey, even while it waits for
// the sealer.
func (f *File) FingerprintKey(ctx context.Context) ([]byte, error) {
	f.keyMu.Lock()
	defer f.keyMu.Unlock()
	return f.loadKey(ctx)
}

// loadKey returns a copy of the key, reading, unsealing, making or sealing
// the key file as needed. f.keyMu is held.
func (f *File) loadKey(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	closed, baselines := f.status()
	if closed {
		return nil, ErrClosed
	}
	if f.key != nil {
		return bytes.Clone(f.key), nil
	}
	data, err := os.ReadFile(f.keyPath)
	switch {
	case err == nil:
		key, err := f.keyFromFile(ctx, data)
		if err != nil {
			return nil, err
		}
		f.key = key
	case errors.Is(err, fs.ErrNotExist):
		if baselines {
			reason := "fingerprint key file is missing but the state file holds baselines (restore it; a new key would make every baseline mismatch)"
			if old := f.given + ".key"; f.given != f.path {
				if _, serr := os.Lstat(old); serr == nil {
					reason += "; a key file exists next to the link at " + old + ": move it here"
				}
			}
			return nil, &CorruptError{Path: f.keyPath, Reason: reason, Err: err}
		}
		k, err := fingerprint.NewKey()
		if err != nil {
			return nil, fmt.Errorf("state: fingerprint key: %w", err)
		}
		if f.sealer != nil {
			err = f.writeSealed(ctx, k)
		} else {
			err = f.writeKeyFile(k)
		}
		if err != nil {
			clear(k)
			return nil, err
		}
		f.key = k
	default:
		return nil, fmt.Errorf("state: fingerprint key: %w", err)
	}
	return bytes.Clone(f.key), nil
}

// keyFromFile returns the key that the key file's content data holds:
// a plain key (sealed in place first when the File has a sealer) or a
// sealed key, unsealed.
func (f *File) keyFromFile(ctx context.Context, data []byte) ([]byte, error) {
	if len(data) == fingerprint.KeySize {
		if f.sealer != nil {
			if err := f.writeSealed(ctx, data); err != nil {
				clear(data)
				return nil, err
			}
		}
		return data, nil
	}
	if isSealedKeyFile(data) {
		k, err := decodeSealedKeyFile(f.keyPath, data)
		if err != nil {
			return nil, err
		}
		return f.unseal(ctx, k)
	}
	n := len(data)
	clear(data)
	return nil, &CorruptError{Path: f.keyPath, Reason: fmt.Sprintf("fingerprint key file has %d bytes, want %d (or a sealed key file)", n, fingerprint.KeySize), Err: fingerprint.ErrKeySize}
}

// readKeyFile reads the key file at path.
func readKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("state: fingerprint key: %w", err)
	}
	return data, nil
}

// status reports whether the File is closed and whether it holds baselines.
func (f *File) status() (closed, baselines bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed, !f.closed && f.hasBaselines()
}

// Close releases the lock file and forgets the state and the key. Later
// calls of Load, Save, FingerprintKey and RewrapKey return [ErrClosed].
// Close waits for a FingerprintKey or RewrapKey call in progress. Close is
// idempotent.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.syncs = nil
	f.mu.Unlock()
	// A key file write in progress ends before the lock is released.
	f.keyMu.Lock()
	clear(f.key)
	f.key = nil
	f.keyMu.Unlock()
	if err := f.unlock(); err != nil {
		return fmt.Errorf("state: close: %w", err)
	}
	return nil
}

// writeKeyFile replaces the key file's content atomically; if the key file
// is a symbolic link, its target is replaced and the link kept.
func (f *File) writeKeyFile(data []byte) error {
	err := atomicfile.WriteFunc(f.keyPath, &atomicfile.Options{FailAt: f.failAt}, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: fingerprint key: %w", err)
	}
	return nil
}

func (f *File) hasBaselines() bool {
	for _, e := range f.syncs {
		if len(e.st.Baseline) > 0 {
			return true
		}
	}
	return false
}

// checkUTF8 refuses names that JSON cannot keep: encoding/json would replace
// invalid UTF-8, so a key would come back renamed and lose its baseline.
func checkUTF8(name string, st *State) error {
	if !utf8.ValidString(name) {
		return errors.New("sync name is not valid UTF-8")
	}
	for k := range st.Baseline {
		if !utf8.ValidString(k) {
			return fmt.Errorf("baseline key %q is not valid UTF-8", k)
		}
	}
	for k := range st.Conflicts {
		if !utf8.ValidString(k) {
			return fmt.Errorf("conflict key %q is not valid UTF-8", k)
		}
	}
	return nil
}

// readStateFile reads the state file at path; a missing file is empty.
func readStateFile(path string) (map[string]*fileEntry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*fileEntry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: read state file: %w", err)
	}
	return decodeStateFile(path, data)
}

// decodeStateFile parses the content of the state file at path.
func decodeStateFile(path string, data []byte) (map[string]*fileEntry, error) {
	corrupt := func(reason string, err error) error {
		return &CorruptError{Path: path, Reason: reason, Err: err}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, corrupt(fmt.Sprintf("empty file (%d bytes)", len(data)), nil)
	}
	var top struct {
		Format *int64          `json:"format"`
		Syncs  json.RawMessage `json:"syncs"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, corrupt("not a valid state file", err)
	}
	if top.Format == nil {
		return nil, corrupt("no format version", nil)
	}
	if *top.Format != FileFormat {
		return nil, corrupt(fmt.Sprintf("format %d, this version reads format %d", *top.Format, FileFormat), ErrUnknownFormat)
	}
	var raws map[string]json.RawMessage
	if top.Syncs != nil {
		if err := json.Unmarshal(top.Syncs, &raws); err != nil {
			return nil, corrupt("invalid syncs", err)
		}
	}
	syncs := make(map[string]*fileEntry, len(raws))
	for name, raw := range raws {
		var st *State
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, corrupt(fmt.Sprintf("sync %q", name), err)
		}
		if st == nil {
			return nil, corrupt(fmt.Sprintf("sync %q: null state", name), nil)
		}
		if st.Revision < 1 {
			return nil, corrupt(fmt.Sprintf("sync %q: revision %d", name, st.Revision), nil)
		}
		syncs[name] = &fileEntry{st: st, raw: raw}
	}
	return syncs, nil
}

// encodeJSON returns the compact JSON encoding of v, without HTML escaping
// and without a trailing newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
