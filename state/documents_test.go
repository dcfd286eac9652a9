package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocuments runs the Documents contract on Memory and File.
func TestDocuments(t *testing.T) {
	stores := map[string]func(t *testing.T) Documents{
		"Memory": func(t *testing.T) Documents { return NewMemory() },
		"File": func(t *testing.T) Documents {
			return openTestFile(t, filepath.Join(t.TempDir(), "state.json"), nil)
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			if _, err := s.LoadDocument(ctx, "catalog"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("LoadDocument before a save = %v, want ErrNotFound", err)
			}
			d := &Document{Data: []byte(`{"a":1}`)}
			if err := s.SaveDocument(ctx, "catalog", d); err != nil {
				t.Fatal(err)
			}
			if d.Revision != 1 {
				t.Fatalf("Revision after the first save = %d, want 1", d.Revision)
			}
			// A stale revision is refused and changes nothing.
			stale := &Document{Revision: 0, Data: []byte(`{"a":2}`)}
			if err := s.SaveDocument(ctx, "catalog", stale); !errors.Is(err, ErrConflict) {
				t.Fatalf("SaveDocument with a stale revision = %v, want ErrConflict", err)
			}
			got, err := s.LoadDocument(ctx, "catalog")
			if err != nil || got.Revision != 1 || string(got.Data) != `{"a":1}` {
				t.Fatalf("LoadDocument = %+v, %v; want revision 1 and the first data", got, err)
			}
			got.Data[0] = 'X' // the caller's copy
			d.Data = []byte(`{"a":3}`)
			if err := s.SaveDocument(ctx, "catalog", d); err != nil || d.Revision != 2 {
				t.Fatalf("second SaveDocument = %v, revision %d; want nil, 2", err, d.Revision)
			}
			got, _ = s.LoadDocument(ctx, "catalog")
			if string(got.Data) != `{"a":3}` {
				t.Fatalf("data = %q", got.Data)
			}
			// Another name is another document.
			if _, err := s.LoadDocument(ctx, "other"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("LoadDocument(other) = %v, want ErrNotFound", err)
			}
			for _, bad := range []struct {
				name string
				data []byte
			}{
				{"../x", nil},
				{"", nil},
				{"a/b", nil},
				{"ok", []byte{0xff, 0xfe}},
				{"ok", []byte(strings.Repeat("x", MaxDocumentBytes+1))},
			} {
				err := s.SaveDocument(ctx, bad.name, &Document{Data: bad.data})
				if !errors.Is(err, ErrInvalidDocument) {
					t.Errorf("SaveDocument(%q, %d bytes) = %v, want ErrInvalidDocument", bad.name, len(bad.data), err)
				}
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.LoadDocument(cctx, "catalog"); !errors.Is(err, context.Canceled) {
				t.Errorf("LoadDocument with a done ctx = %v", err)
			}
			if err := s.SaveDocument(cctx, "catalog", d); !errors.Is(err, context.Canceled) {
				t.Errorf("SaveDocument with a done ctx = %v", err)
			}
		})
	}
}

// TestFileDocumentsPersist: the documents outlive the File, in a 0600 file
// beside the state file, and a failed write changes nothing.
func TestFileDocumentsPersist(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	f, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &Document{Data: []byte("one")}
	if err := f.SaveDocument(ctx, "catalog", d); err != nil {
		t.Fatal(err)
	}
	injected := errors.New("injected")
	f.failAt = func(string) error { return injected }
	if err := f.SaveDocument(ctx, "catalog", &Document{Revision: 1, Data: []byte("two")}); !errors.Is(err, injected) {
		t.Fatalf("SaveDocument with a failing write = %v", err)
	}
	f.failAt = nil
	if got, _ := f.LoadDocument(ctx, "catalog"); got.Revision != 1 || string(got.Data) != "one" {
		t.Fatalf("after a failed write: %+v", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.LoadDocument(ctx, "catalog"); !errors.Is(err, ErrClosed) {
		t.Fatalf("LoadDocument after Close = %v, want ErrClosed", err)
	}
	fi, err := os.Stat(path + ".docs")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("documents file mode = %v, want 0600", fi.Mode().Perm())
	}
	f2 := openTestFile(t, path, nil)
	got, err := f2.LoadDocument(ctx, "catalog")
	if err != nil || got.Revision != 1 || string(got.Data) != "one" {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
	// The state file itself is untouched by documents.
	if _, err := os.Stat(path); err == nil {
		t.Errorf("the state file exists though no state was saved")
	}
}

func TestFileDocumentsCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, content := range []string{"not json", `{"format":99,"documents":{}}`, `{"format":1,"documents":{"c":{"revision":0,"data":""}}}`} {
		if err := os.WriteFile(path+".docs", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := OpenFile(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.LoadDocument(context.Background(), "c")
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Errorf("documents file %q: LoadDocument = %v, want a *CorruptError", content, err)
		}
		f.Close()
	}
}
