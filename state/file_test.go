package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/internal/fingerprint"
)

// openTestFile opens a File at path and closes it when the test ends.
func openTestFile(t testing.TB, path string, opts *FileOptions) *File {
	t.Helper()
	f, err := OpenFile(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFile(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		return openTestFile(t, filepath.Join(t.TempDir(), "state.json"), nil)
	})
}

func TestFileWithKeyOption(t *testing.T) {
	key := bytes.Repeat([]byte{7}, fingerprint.KeySize)
	testStore(t, func(t *testing.T) Store {
		return openTestFile(t, filepath.Join(t.TempDir(), "state.json"), &FileOptions{Key: key})
	})

	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	opts := &FileOptions{Key: bytes.Clone(key)}
	f := openTestFile(t, path, opts)
	clear(opts.Key) // OpenFile keeps its own copy
	got, err := f.FingerprintKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, key) {
		t.Fatal("FingerprintKey is not FileOptions.Key")
	}
	if _, err := os.Stat(path + ".key"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("key file written although FileOptions.Key is set: %v", err)
	}
}

func TestFileKeyOptionSize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		_, err := OpenFile(filepath.Join(t.TempDir(), "state.json"), &FileOptions{Key: make([]byte, n)})
		if !errors.Is(err, fingerprint.ErrKeySize) {
			t.Errorf("OpenFile with a %d-byte key = %v, want ErrKeySize", n, err)
		}
	}
}

func TestFileReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")

	f, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := f.FingerprintKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, b := sampleState(t), &State{Sync: &Record{Status: Pending}}
	for name, st := range map[string]*State{"a": a, "b": b} {
		if err := f.Save(ctx, name, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Save(ctx, "a", a); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	g := openTestFile(t, path, nil)
	for name, want := range map[string]*State{"a": a, "b": b} {
		got, err := g.Load(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("after reopen, Load(%q) =\n%+v\nwant\n%+v", name, got, want)
		}
	}
	key2, err := g.FingerprintKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, key2) {
		t.Fatal("fingerprint key changed across reopen")
	}
	stale := a.Clone()
	stale.Revision = 1
	if err := g.Save(ctx, "a", stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale Save after reopen = %v, want ErrConflict", err)
	}
	if err := g.Save(ctx, "a", a); err != nil || a.Revision != 3 {
		t.Fatalf("Save after reopen = %v, revision %d; want nil, 3", err, a.Revision)
	}
}

func TestFileLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	f := openTestFile(t, path, nil)
	key, err := f.FingerprintKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := fingerprint.New(key)
	const canary = "canary-secret-value-4f1d"
	st := &State{Baseline: map[string]conflict.Fingerprint{"K": h.Sum(canary)}}
	if err := f.Save(ctx, "app", st); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(ctx, "other", &State{}); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, path)
	if bytes.Contains(data, []byte(canary)) {
		t.Fatal("state file holds a value")
	}
	var top struct {
		Format int                        `json:"format"`
		Syncs  map[string]json.RawMessage `json:"syncs"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	if top.Format != FileFormat || len(top.Syncs) != 2 || top.Syncs["app"] == nil {
		t.Fatalf("unexpected layout:\n%s", data)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"state.json", "state.json.key", "state.json.lock"}) {
		t.Fatalf("directory holds %q", got)
	}
}

func TestFileEmptyFormat(t *testing.T) {
	for _, content := range []string{`{"format":1}`, `{"format":1,"syncs":null}`, " {\"format\": 1, \"syncs\": {}}\n"} {
		path := filepath.Join(t.TempDir(), "state.json")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f := openTestFile(t, path, nil)
		if _, err := f.Load(context.Background(), "app"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Load = %v, want ErrNotFound", content, err)
		}
	}
}

// validFile returns the content of a state file with one sync.
func validFile(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.json")
	f := openTestFile(t, path, nil)
	if err := f.Save(context.Background(), "app", sampleState(t)); err != nil {
		t.Fatal(err)
	}
	return readFile(t, path)
}

func TestFileCorrupt(t *testing.T) {
	valid := validFile(t)
	tests := []struct {
		name, content string
		unknown       bool
	}{
		{"empty", "", false},
		{"whitespace", " \n\t", false},
		{"truncated", string(valid[:len(valid)/2]), false},
		{"truncated end", string(valid[:len(valid)-3]), false},
		{"garbage", "not json", false},
		{"trailing data", `{"format":1} {}`, false},
		{"null", "null", false},
		{"array", "[]", false},
		{"no format", `{"syncs":{}}`, false},
		{"null format", `{"format":null,"syncs":{}}`, false},
		{"string format", `{"format":"1","syncs":{}}`, false},
		{"fractional format", `{"format":1.5}`, false},
		{"syncs array", `{"format":1,"syncs":[]}`, false},
		{"null sync", `{"format":1,"syncs":{"app":null}}`, false},
		{"sync string", `{"format":1,"syncs":{"app":"x"}}`, false},
		{"revision string", `{"format":1,"syncs":{"app":{"revision":"1"}}}`, false},
		{"revision zero", `{"format":1,"syncs":{"app":{"revision":0}}}`, false},
		{"short fingerprint", `{"format":1,"syncs":{"app":{"revision":1,"baseline":{"K":"AAAA"}}}}`, false},
		{"unknown class", `{"format":1,"syncs":{"app":{"revision":1,"conflicts":{"K":{"class":"nope"}}}}}`, false},
		{"bad time", `{"format":1,"syncs":{"app":{"revision":1,"sync":{"status":"succeeded","time":"yesterday"}}}}`, false},
		{"format 2", `{"format":2,"syncs":{"app":{"baseline":[1,2,3]}}}`, true},
		{"format 0", `{"format":0,"syncs":{}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the lock is released after a failed open
				f, err := OpenFile(path, nil)
				if err == nil {
					f.Close()
					t.Fatal("OpenFile succeeded on a corrupt file")
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("OpenFile = %v, want ErrCorrupt", err)
				}
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Path != path {
					t.Fatalf("OpenFile = %v, want a *CorruptError for %s", err, path)
				}
				if errors.Is(err, ErrUnknownFormat) != tt.unknown {
					t.Fatalf("OpenFile = %v; errors.Is(err, ErrUnknownFormat) = %v, want %v", err, !tt.unknown, tt.unknown)
				}
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q does not name the file", err)
				}
			}
			if got := readFile(t, path); string(got) != tt.content {
				t.Fatal("corrupt file was changed")
			}
		})
	}
}

func TestFileKeyMissingWithBaselines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	f, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.FingerprintKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(ctx, "app", sampleState(t)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Remove(path + ".key"); err != nil {
		t.Fatal(err)
	}

	g := openTestFile(t, path, nil)
	if _, err := g.Load(ctx, "app"); err != nil {
		t.Fatalf("Load without key file = %v", err)
	}
	_, err = g.FingerprintKey(ctx)
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &ce) || ce.Path != path+".key" {
		t.Fatalf("FingerprintKey = %v, want a *CorruptError for the missing key file", err)
	}
	if !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error %q does not say the key file is missing", err)
	}
	if _, err := os.Stat(path + ".key"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a new key file was made: %v", err)
	}
}

func TestFileKeyMissingWithoutBaselines(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.json")
	f := openTestFile(t, path, nil)
	if err := f.Save(ctx, "app", &State{Sync: &Record{Status: Failed}}); err != nil {
		t.Fatal(err)
	}
	key, err := f.FingerprintKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path+".key"); !bytes.Equal(got, key) {
		t.Fatal("key file does not hold the key")
	}
}

func TestFileKeyWrongSize(t *testing.T) {
	for _, n := range []int{0, 1, 31, 33, 64} {
		path := filepath.Join(t.TempDir(), "state.json")
		if err := os.WriteFile(path+".key", make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
		f := openTestFile(t, path, nil)
		_, err := f.FingerprintKey(context.Background())
		var ce *CorruptError
		if !errors.Is(err, ErrCorrupt) || !errors.Is(err, fingerprint.ErrKeySize) || !errors.As(err, &ce) || ce.Path != path+".key" {
			t.Errorf("%d-byte key file: FingerprintKey = %v, want a *CorruptError wrapping ErrKeySize", n, err)
		}
		if got := readFile(t, path+".key"); len(got) != n {
			t.Errorf("%d-byte key file was replaced", n)
		}
	}
}

func TestFileFailedSave(t *testing.T) {
	ctx := context.Background()
	for _, step := range []string{"create", "sync", "close", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			f := openTestFile(t, path, nil)
			st := sampleState(t)
			if err := f.Save(ctx, "app", st); err != nil {
				t.Fatal(err)
			}
			before := readFile(t, path)
			names := dirNames(t, dir)
			want := st.Clone()

			injected := errors.New("injected failure")
			f.failAt = func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}
			st.Initialized = false
			err := f.Save(ctx, "app", st)
			if !errors.Is(err, injected) {
				t.Fatalf("Save = %v, want the injected failure", err)
			}
			if err2 := f.Save(ctx, "other", &State{}); !errors.Is(err2, injected) {
				t.Fatalf("Save of a new sync = %v, want the injected failure", err2)
			}
			if st.Revision != 1 {
				t.Errorf("failed Save set Revision to %d", st.Revision)
			}
			if got := readFile(t, path); !bytes.Equal(got, before) {
				t.Error("failed Save changed the state file")
			}
			if got := dirNames(t, dir); !slices.Equal(got, names) {
				t.Errorf("failed Save left %q, want %q", got, names)
			}
			got, err := f.Load(ctx, "app")
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Load after failed Save = %+v, %v; want the old state", got, err)
			}
			if _, err := f.Load(ctx, "other"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Load of a sync whose first Save failed = %v, want ErrNotFound", err)
			}

			f.failAt = nil
			if err := f.Save(ctx, "app", st); err != nil || st.Revision != 2 {
				t.Fatalf("retried Save = %v, revision %d; want nil, 2", err, st.Revision)
			}
		})
	}
}

func TestFileUnencodableState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	f := openTestFile(t, path, nil)
	if err := f.Save(ctx, "app", &State{}); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)
	bad := &State{Revision: 1, Conflicts: map[string]FlaggedConflict{"K": {Class: conflict.Class(200)}}}
	if err := f.Save(ctx, "app", bad); err == nil {
		t.Fatal("Save of an unencodable state succeeded")
	}
	if got := readFile(t, path); !bytes.Equal(got, before) {
		t.Error("failed Save changed the state file")
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"state.json", "state.json.lock"}) {
		t.Errorf("directory holds %q", got)
	}
}

func TestFileFailedKeyWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	f := openTestFile(t, path, nil)
	f.failAt = func(s string) error {
		if s == "rename" {
			return errors.New("injected failure")
		}
		return nil
	}
	if _, err := f.FingerprintKey(ctx); err == nil {
		t.Fatal("FingerprintKey succeeded")
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"state.json.lock"}) {
		t.Fatalf("failed key write left %q", got)
	}
	f.failAt = nil
	key, err := f.FingerprintKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path+".key"); !bytes.Equal(got, key) {
		t.Fatal("key file does not hold the key")
	}
}

func TestFileClosed(t *testing.T) {
	ctx := context.Background()
	f, err := OpenFile(filepath.Join(t.TempDir(), "state.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := f.Load(ctx, "app"); !errors.Is(err, ErrClosed) {
		t.Errorf("Load = %v, want ErrClosed", err)
	}
	if err := f.Save(ctx, "app", &State{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Save = %v, want ErrClosed", err)
	}
	if _, err := f.FingerprintKey(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("FingerprintKey = %v, want ErrClosed", err)
	}
}

func TestOpenFileErrors(t *testing.T) {
	if _, err := OpenFile("", nil); err == nil {
		t.Error("OpenFile(\"\") succeeded")
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing", "state.json"), nil); err == nil {
		t.Error("OpenFile in a missing directory succeeded")
	}
	dir := t.TempDir()
	if _, err := OpenFile(dir, nil); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("OpenFile on a directory = %v, want a read error", err)
	}
}

func FuzzDecodeStateFile(f *testing.F) {
	f.Add([]byte(`{"format":1,"syncs":{"app":{"revision":2,"baseline":{"K":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}}}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"format":1,"syncs":{"a":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		syncs, err := decodeStateFile("state.json", data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		for name, e := range syncs {
			if e.st == nil || e.st.Revision < 1 {
				t.Fatalf("sync %q: bad entry %+v", name, e.st)
			}
			if _, err := encodeJSON(e.st); err != nil {
				t.Fatalf("sync %q: decoded state does not encode: %v", name, err)
			}
		}
	})
}

func BenchmarkFileSave100k(b *testing.B) {
	ctx := context.Background()
	f := openTestFile(b, filepath.Join(b.TempDir(), "state.json"), nil)
	key, err := f.FingerprintKey(ctx)
	if err != nil {
		b.Fatal(err)
	}
	h, _ := fingerprint.New(key)
	st := &State{Baseline: make(map[string]conflict.Fingerprint, 100_000)}
	for i := range 100_000 {
		k := fmt.Sprintf("KEY_%06d", i)
		st.Baseline[k] = h.Sum(k)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := f.Save(ctx, "app", st); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFileInvalidUTF8(t *testing.T) {
	ctx := context.Background()
	f := openTestFile(t, filepath.Join(t.TempDir(), "state.json"), nil)
	for name, st := range map[string]*State{
		"bad\xffname": {},
		"app":         {Baseline: map[string]conflict.Fingerprint{"K\xff": {}}},
		"app2":        {Conflicts: map[string]FlaggedConflict{"K\xfe": {}}},
	} {
		if err := f.Save(ctx, name, st); err == nil || errors.Is(err, ErrConflict) {
			t.Errorf("Save(%q) = %v, want a UTF-8 error", name, err)
		}
		if _, err := f.Load(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Load(%q) after refused Save = %v", name, err)
		}
	}
}
