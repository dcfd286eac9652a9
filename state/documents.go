package state

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/secretsync/secretsync/internal/atomicfile"
)

// Documents is implemented by stores that keep a few named documents
// beside the states of syncs, with the same check-and-set (and, across
// processes, the same locks): package registry keeps its catalog of
// destinations and associations in one. [Memory], [File] and
// vaultkv.Store implement it.
//
// Implementations must be safe for concurrent use.
type Documents interface {
	// LoadDocument returns the named document, or an error for which
	// errors.Is(err, ErrNotFound) holds before its first save.
	LoadDocument(ctx context.Context, name string) (*Document, error)
	// SaveDocument replaces the named document if doc.Revision is the
	// stored revision (0 when there is none), and sets doc.Revision to the
	// new revision. Otherwise it returns an error for which
	// errors.Is(err, ErrConflict) holds and changes nothing. A name or a
	// document that the store cannot keep is refused with an error
	// matching [ErrInvalidDocument], and nothing changes.
	SaveDocument(ctx context.Context, name string, doc *Document) error
}

// Document is a document kept by a [Documents] store.
type Document struct {
	// Revision is maintained by the store, as State.Revision is.
	Revision int64
	// Data is the document: valid UTF-8 text (typically JSON), at most
	// MaxDocumentBytes.
	Data []byte
}

// MaxDocumentBytes bounds the Data of a [Document], so that every store
// can keep it (a Vault KV secret is limited by its storage backend).
const MaxDocumentBytes = 512 << 10

// ErrInvalidDocument reports a document name or Data that a [Documents]
// store refuses: a name that is not 1 to 64 letters, digits, '_', '.' or
// '-' starting with a letter or a digit, or Data that is not valid UTF-8
// or is longer than [MaxDocumentBytes].
var ErrInvalidDocument = errors.New("state: invalid document")

var documentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// CheckDocument reports whether a [Documents] store can keep the document
// name with data, with an error matching [ErrInvalidDocument] when not.
// Implementations call it before saving.
func CheckDocument(name string, data []byte) error {
	switch {
	case !documentName.MatchString(name):
		return fmt.Errorf("%w: name %q must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or a digit", ErrInvalidDocument, name)
	case len(data) > MaxDocumentBytes:
		return fmt.Errorf("%w: %q has %d bytes, more than %d", ErrInvalidDocument, name, len(data), MaxDocumentBytes)
	case !utf8.Valid(data):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidDocument, name)
	}
	return nil
}

var _ Documents = (*Memory)(nil)

// LoadDocument returns a copy of the named document, or an error wrapping
// [ErrNotFound]. A done ctx returns ctx.Err().
func (m *Memory) LoadDocument(ctx context.Context, name string) (*Document, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[name]
	if !ok {
		return nil, fmt.Errorf("state: load document %q: %w", name, ErrNotFound)
	}
	return &Document{Revision: d.Revision, Data: slices.Clone(d.Data)}, nil
}

// SaveDocument stores a copy of doc under name if doc.Revision is the
// stored revision (see [Documents]). A done ctx returns ctx.Err().
func (m *Memory) SaveDocument(ctx context.Context, name string, doc *Document) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if doc == nil {
		return fmt.Errorf("state: save document %q: nil document", name)
	}
	if err := CheckDocument(name, doc.Data); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur int64
	if d, ok := m.docs[name]; ok {
		cur = d.Revision
	}
	if doc.Revision != cur {
		return fmt.Errorf("state: save document %q: revision %d, stored revision %d: %w", name, doc.Revision, cur, ErrConflict)
	}
	if m.docs == nil {
		m.docs = map[string]*Document{}
	}
	m.docs[name] = &Document{Revision: cur + 1, Data: slices.Clone(doc.Data)}
	doc.Revision = cur + 1
	return nil
}

var _ Documents = (*File)(nil)

// docsFile is the content of a File's documents file.
type docsFile struct {
	Format    int                     `json:"format"`
	Documents map[string]*docsFileDoc `json:"documents"`
}

type docsFileDoc struct {
	Revision int64  `json:"revision"`
	Data     string `json:"data"`
}

// LoadDocument returns the named document, or an error wrapping
// [ErrNotFound]. A File keeps its documents in a second file beside the
// state file, its path followed by ".docs", mode 0600, written atomically
// as the state file is and guarded by the same lock file; it is read on
// the first call. An unreadable documents file gives a [*CorruptError].
// A done ctx returns ctx.Err(); after Close, [ErrClosed].
func (f *File) LoadDocument(ctx context.Context, name string) (*Document, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	docs, err := f.documents()
	if err != nil {
		return nil, err
	}
	d, ok := docs[name]
	if !ok {
		return nil, fmt.Errorf("state: load document %q: %w", name, ErrNotFound)
	}
	return &Document{Revision: d.Revision, Data: []byte(d.Data)}, nil
}

// SaveDocument replaces the named document if doc.Revision is the stored
// revision (see [Documents]), writing the documents file atomically; on
// an error nothing changes. A done ctx returns ctx.Err() before any I/O;
// after Close, [ErrClosed].
func (f *File) SaveDocument(ctx context.Context, name string, doc *Document) error {
	if doc == nil {
		return fmt.Errorf("state: save document %q: nil document", name)
	}
	if err := CheckDocument(name, doc.Data); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	docs, err := f.documents()
	if err != nil {
		return err
	}
	var cur int64
	if d, ok := docs[name]; ok {
		cur = d.Revision
	}
	if doc.Revision != cur {
		return fmt.Errorf("state: save document %q: revision %d, stored revision %d: %w", name, doc.Revision, cur, ErrConflict)
	}
	next := make(map[string]*docsFileDoc, len(docs)+1)
	for n, d := range docs {
		next[n] = d
	}
	next[name] = &docsFileDoc{Revision: cur + 1, Data: string(doc.Data)}
	raw, err := encodeJSON(docsFile{Format: FileFormat, Documents: next})
	if err != nil {
		return fmt.Errorf("state: save document %q: %w", name, err)
	}
	err = atomicfile.WriteFunc(f.path+".docs", &atomicfile.Options{FailAt: f.failAt}, func(w *bufio.Writer) error {
		w.Write(raw)
		_, err := w.WriteString("\n")
		return err
	})
	if err != nil {
		return fmt.Errorf("state: save document %q: %w", name, err)
	}
	f.docs = next
	doc.Revision = cur + 1
	return nil
}

// documents returns the documents, reading the file on first use. f.mu is
// held.
func (f *File) documents() (map[string]*docsFileDoc, error) {
	if f.closed {
		return nil, ErrClosed
	}
	if f.docs != nil {
		return f.docs, nil
	}
	p := f.path + ".docs"
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		f.docs = map[string]*docsFileDoc{}
		return f.docs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: read documents file: %w", err)
	}
	var top docsFile
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, &CorruptError{Path: p, Reason: "not a valid documents file", Err: err}
	}
	if top.Format != FileFormat {
		return nil, &CorruptError{Path: p, Reason: fmt.Sprintf("format %d, this version reads format %d", top.Format, FileFormat), Err: ErrUnknownFormat}
	}
	for n, d := range top.Documents {
		if d == nil || d.Revision < 1 {
			return nil, &CorruptError{Path: p, Reason: fmt.Sprintf("document %q has no revision", n)}
		}
	}
	if top.Documents == nil {
		top.Documents = map[string]*docsFileDoc{}
	}
	f.docs = top.Documents
	return f.docs, nil
}
