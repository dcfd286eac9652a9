package dotenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/destinationtest"
)

// writeFile writes the dotenv file directly, as an editor would.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// outOfBandSet appends an entry for key to the file, which wins over any
// earlier entry; a single-quoted one when the value allows it.
func outOfBandSet(path, key, value string) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s := string(data)
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	if strings.ContainsAny(value, "'\r\n") {
		s += key + "=" + formatValue(value) + "\n"
	} else {
		s += "export " + key + "='" + value + "'\n"
	}
	return os.WriteFile(path, []byte(s), 0o600)
}

// outOfBandDelete removes every entry of key from the file.
func outOfBandDelete(path, key string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	doc, err := parse(path, string(data))
	if err != nil {
		return err
	}
	doc.remove(key)
	return os.WriteFile(path, doc.render(), 0o600)
}

func TestConformance(t *testing.T) {
	destinationtest.Run(t, destinationtest.Harness{
		Keys: []string{"DB_URL", "api-key.v2", "nested.path.KEY"},
		New: func(t *testing.T) destinationtest.Fixture {
			path := filepath.Join(t.TempDir(), ".env")
			f, err := Open(path, &Options{CreateIfMissing: true})
			if err != nil {
				t.Fatal(err)
			}
			return destinationtest.Fixture{
				Destination: f,
				Set: func(_ context.Context, key, value string) error {
					return outOfBandSet(path, key, value)
				},
				Delete: func(_ context.Context, key string) error {
					return outOfBandDelete(path, key)
				},
			}
		},
	})
}

// TestConformanceExistingFile runs the suite over a file that exists from
// the start and holds only comments.
func TestConformanceExistingFile(t *testing.T) {
	destinationtest.Run(t, destinationtest.Harness{
		Keys: []string{"A", "b.c", "D-e_F"},
		New: func(t *testing.T) destinationtest.Fixture {
			path := filepath.Join(t.TempDir(), "app.env")
			writeFile(t, path, "# managed by secretsync\r\n\r\n")
			f, err := Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			return destinationtest.Fixture{
				Destination: f,
				Set: func(_ context.Context, key, value string) error {
					return outOfBandSet(path, key, value)
				},
				Delete: func(_ context.Context, key string) error {
					return outOfBandDelete(path, key)
				},
			}
		},
	})
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, src string
		want      map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"comments and blanks only", "# a\n\n   \n\t# b", map[string]string{}},
		{"basic", "A=1\nB=two\n", map[string]string{"A": "1", "B": "two"}},
		{"no final newline", "A=1", map[string]string{"A": "1"}},
		{"key characters", "a.b-c_D9=1\n_x=2\n", map[string]string{"a.b-c_D9": "1", "_x": "2"}},
		{"export", "export A=1\nexport\t B=2\n", map[string]string{"A": "1", "B": "2"}},
		{"export as a key", "export=1\nexport =2\n", map[string]string{"export": "2"}},
		{"blanks around", "  A  =  v w  \n", map[string]string{"A": "v w"}},
		{"inline comments", "A=1 # one\nB=a#b\nC= # nothing\nD=#x\nE=x\t#tab\n", map[string]string{"A": "1", "B": "a#b", "C": "", "D": "#x", "E": "x"}},
		{"empty values", "A=\nB=\"\"\nC=''\nD=   \n", map[string]string{"A": "", "B": "", "C": "", "D": ""}},
		{"single quotes are literal", `A='x # y $HOME \n "q"'` + "\n", map[string]string{"A": `x # y $HOME \n "q"`}},
		{"double quote escapes", `A="a\nb\"c\\d\$e\tf\rg` + "\\`" + `h\q"` + "\n", map[string]string{"A": "a\nb\"c\\d$e\tf\rg`h\\q"}},
		{"quoted keeps blanks and hashes", `A="  x # y  "` + "\n", map[string]string{"A": "  x # y  "}},
		{"comment after quotes", "A=\"x\" # c\nB='y'#c\nC=\"z\"   \n", map[string]string{"A": "x", "B": "y", "C": "z"}},
		{"CRLF", "A=1\r\nB=\"two\"\r\nC='3'\r\nD=4 # c\r\n\r\n# x\r\n", map[string]string{"A": "1", "B": "two", "C": "3", "D": "4"}},
		{"multiline double quotes", "A=\"l1\nl2\"\nB=2\n", map[string]string{"A": "l1\nl2", "B": "2"}},
		{"multiline CRLF", "A=\"l1\r\nl2\"\r\nB=2\r\n", map[string]string{"A": "l1\nl2", "B": "2"}},
		{"multiline single quotes", "A='-----BEGIN-----\nabc\n-----END-----'\n", map[string]string{"A": "-----BEGIN-----\nabc\n-----END-----"}},
		{"escaped quote then newline", "A=\"x\\\"\ny\"\n", map[string]string{"A": "x\"\ny"}},
		{"duplicates: last wins", "A=1\nB=x\nA=2\n", map[string]string{"A": "2", "B": "x"}},
		{"byte order mark", "\ufeffA=1\n", map[string]string{"A": "1"}},
		{"byte order mark then comment", "\ufeff# c\nA=1\n", map[string]string{"A": "1"}},
		{"unicode and equals", "A=pässwörd=✓\n", map[string]string{"A": "pässwörd=✓"}},
		{"package doc sample", "\t# a comment, and blank lines, are kept as they are\n" +
			"\tDB_HOST=db.internal          # an unquoted value, blanks trimmed\n" +
			"\texport DB_USER=app           # an optional \"export \" prefix\n" +
			"\tDB_PASS='p@ss #1 $HOME'      # single quotes: literal text\n" +
			"\tTLS_KEY=\"line 1\\nline 2\"     # double quotes: escapes\n",
			map[string]string{"DB_HOST": "db.internal", "DB_USER": "app", "DB_PASS": "p@ss #1 $HOME", "TLS_KEY": "line 1\nline 2"}},
		{"quote inside unquoted", "A=it's\nB=x\"y\n", map[string]string{"A": "it's", "B": "x\"y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := parse("test.env", tt.src)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := doc.values(); !maps.Equal(got, tt.want) {
				t.Fatalf("parse(%q) = %q, want %q", tt.src, got, tt.want)
			}
			if got := string(doc.render()); got != tt.src {
				t.Fatalf("render without edits = %q, want the input %q", got, tt.src)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		reason    string
	}{
		{"no equals", "A=1\nnovalue\n", 2, reasonNoEquals},
		{"export without assignment", "export A\n", 1, reasonNoEquals},
		{"no key", "=x\n", 1, reasonNoKey},
		{"digit first", "1A=x\n", 1, reasonBadKey},
		{"blank in key", "A B=x\n", 1, reasonBadKey},
		{"bad character", "A:B=x\n", 1, reasonBadKey},
		{"quoted key", "\"A\"=x\n", 1, reasonBadKey},
		{"unterminated double", "A=\"abc\nB=2\n", 1, reasonUnterminated},
		{"unterminated single", "A=1\nB='abc", 2, reasonUnterminated},
		{"escaped closing quote", "A=\"abc\\\"\n", 1, reasonUnterminated},
		{"text after single quote", "A='x' y\n", 1, reasonAfterQuote},
		{"text after double quote", "A=\"x\"y\n", 1, reasonAfterQuote},
		{"line counting over a multiline value", "A=1\n\nB=\"ab\ncd\"\nC D\n", 5, reasonBadKey},
		{"line counting with CRLF", "A=1\r\nB='x\r\ny'\r\nC\r\n", 4, reasonNoEquals},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("test.env", tt.src)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("parse(%q) = %v, want a *ParseError", tt.src, err)
			}
			if pe.Path != "test.env" || pe.Line != tt.line || pe.Reason != tt.reason {
				t.Fatalf("parse(%q) = %+v, want line %d: %s", tt.src, pe, tt.line, tt.reason)
			}
			want := fmt.Sprintf("dotenv: test.env:%d: %s", tt.line, tt.reason)
			if err.Error() != want {
				t.Fatalf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain_value-1.2", "plain_value-1.2"},
		{"postgres://u@db:5432/app?x=1", `"postgres://u@db:5432/app?x=1"`},
		{"a=b,c+d%e", "a=b,c+d%e"},
		{"two words", `"two words"`},
		{" padded ", `" padded "`},
		{"a#b", `"a#b"`},
		{`q"uo'te`, `"q\"uo'te"`},
		{"l1\nl2\r\n", `"l1\nl2\r\n"`},
		{`$HOME\x` + "`cmd`", `"\$HOME\\x` + "\\`cmd\\`" + `"`},
		{"tab\there", "\"tab\there\""},
		{"pässwörd", `"pässwörd"`},
	}
	for _, tt := range tests {
		if got := formatValue(tt.in); got != tt.want {
			t.Errorf("formatValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// roundTrip checks that v written by formatValue, between other lines,
// parses back as v.
func roundTrip(v string) error {
	f := formatValue(v)
	if strings.ContainsAny(f, "\n") {
		return fmt.Errorf("formatValue(%q) = %q spans several lines", v, f)
	}
	for i, src := range []string{
		"K=" + f,
		"# before\nK=" + f + "\nL=after\n",
		"export K = " + f + " # comment\r\nL=after\r\n",
	} {
		doc, err := parse("fuzz.env", src)
		if err != nil {
			return fmt.Errorf("parse(%q): %v", src, err)
		}
		if got, ok := doc.get("K"); !ok || got != v {
			return fmt.Errorf("parse(%q) gives %q, want %q", src, got, v)
		}
		if i > 0 {
			if got, _ := doc.get("L"); got != "after" {
				return fmt.Errorf("parse(%q): the next line reads %q", src, got)
			}
		}
	}
	return nil
}

func TestRoundTrip(t *testing.T) {
	for _, v := range []string{"", " ", "\\", "\\n", "\"", "'", "$", "\x00", "\r", "\r\n", "\n\n", "#", " #", "\xff\xfe", "a\\\nb"} {
		if err := roundTrip(v); err != nil {
			t.Error(err)
		}
	}
	if err := quick.Check(func(b []byte) bool {
		err := roundTrip(string(b))
		if err != nil {
			t.Log(err)
		}
		return err == nil
	}, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, v := range []string{"", "plain", "two words", "l1\nl2", `q"\$`, "\r\n", "\x00\xff", "  # x  "} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if err := roundTrip(v); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParse checks that any input parses or fails cleanly; that a parsed
// file renders back byte for byte; and that rewriting every entry keeps
// every value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"A=1\n", "export A='x'\r\n# c\n", "A=\"a\\nb\" # c", "\ufeffA=1\rB=2", "A=\"\n\"\nB=x #y\n", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		doc, err := parse("fuzz.env", src)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Line > strings.Count(src, "\n")+1 {
				t.Fatalf("parse(%q) = %v", src, err)
			}
			return
		}
		if got := string(doc.render()); got != src {
			t.Fatalf("render(parse(%q)) = %q", src, got)
		}
		want := doc.values()
		for _, s := range doc.segs {
			s.dirty = s.isVar
		}
		doc.set("ADDED", "v")
		out := string(doc.render())
		again, err := parse("fuzz.env", out)
		if err != nil {
			t.Fatalf("rewritten %q as %q: %v", src, out, err)
		}
		want["ADDED"] = "v"
		if got := again.values(); !maps.Equal(got, want) {
			t.Fatalf("rewritten %q as %q: values %q, want %q", src, out, got, want)
		}
	})
}

func open(t *testing.T, path string, opts *Options) *File {
	t.Helper()
	f, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustApply(t *testing.T, f *File, changes ...destination.Change) {
	t.Helper()
	errs, err := f.Apply(context.Background(), changes)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Apply: change %d: %v", i, err)
		}
	}
}

func list(t *testing.T, f *File) map[string]destination.Secret {
	t.Helper()
	m, err := f.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return m
}

func TestPreservesLayout(t *testing.T) {
	tests := []struct {
		name, before, after string
	}{
		{
			name: "LF",
			before: "# Database\n" +
				"export DB_HOST=db.internal # primary\n" +
				"\n" +
				"DB_PASS='old'\n" +
				"API_KEY=abc\n" +
				"  # indented comment\n" +
				"OLD=gone\n" +
				"CERT=\"-----BEGIN-----\n" +
				"abc\n" +
				"-----END-----\"\n" +
				"OLD=gone too\n" +
				"LAST=1\n",
			after: "# Database\n" +
				"export DB_HOST=db2 # primary\n" +
				"\n" +
				"DB_PASS=\"new pass\"\n" +
				"API_KEY=abc\n" +
				"  # indented comment\n" +
				"CERT=\"-----BEGIN-----\\nxyz\\n-----END-----\"\n" +
				"LAST=1\n" +
				"NEW_KEY=v\n",
		},
		{
			name:   "CRLF",
			before: "# c\r\nexport DB_HOST=x\r\nDB_PASS=p\r\nOLD=o\r\nCERT=c\r\n\r\n",
			after:  "# c\r\nexport DB_HOST=db2\r\nDB_PASS=\"new pass\"\r\nCERT=\"-----BEGIN-----\\nxyz\\n-----END-----\"\r\n\r\nNEW_KEY=v\r\n",
		},
		{
			name:   "no final newline",
			before: "DB_HOST=x\nDB_PASS=p\nOLD=o\nCERT=c",
			after:  "DB_HOST=db2\nDB_PASS=\"new pass\"\nCERT=\"-----BEGIN-----\\nxyz\\n-----END-----\"\nNEW_KEY=v\n",
		},
		{
			name:   "comment after a quoted value, no blank",
			before: "DB_HOST=\"x\"#c\nDB_PASS=p\nCERT=c\n",
			after:  "DB_HOST=db2 #c\nDB_PASS=\"new pass\"\nCERT=\"-----BEGIN-----\\nxyz\\n-----END-----\"\nNEW_KEY=v\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".env")
			writeFile(t, path, tt.before)
			f := open(t, path, nil)
			m := list(t, f)
			mustApply(t, f,
				destination.Change{Key: "DB_PASS", Value: "new pass", Expect: m["DB_PASS"].Version},
				destination.Change{Key: "OLD", Delete: true, Expect: m["OLD"].Version},
				destination.Change{Key: "NEW_KEY", Value: "v"},
				destination.Change{Key: "DB_HOST", Value: "db2", Expect: m["DB_HOST"].Version},
				destination.Change{Key: "CERT", Value: "-----BEGIN-----\nxyz\n-----END-----", Expect: m["CERT"].Version},
				destination.Change{Key: "ABSENT", Delete: true},
			)
			if got := readFile(t, path); got != tt.after {
				t.Fatalf("file after Apply:\n%q\nwant\n%q", got, tt.after)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	writeFile(t, path, "A=1\nB=x\nA=2\n")
	f := open(t, path, nil)
	m := list(t, f)
	if m["A"].Value != "2" {
		t.Fatalf("A = %q, want the last entry", m["A"].Value)
	}
	mustApply(t, f, destination.Change{Key: "A", Value: "3", Expect: m["A"].Version})
	if got, want := readFile(t, path), "A=1\nB=x\nA=3\n"; got != want {
		t.Fatalf("after a put: %q, want %q", got, want)
	}
	m = list(t, f)
	mustApply(t, f, destination.Change{Key: "A", Delete: true, Expect: m["A"].Version})
	if got, want := readFile(t, path), "B=x\n"; got != want {
		t.Fatalf("after a delete: %q, want %q", got, want)
	}
}

func TestAppendAfterLastLine(t *testing.T) {
	for before, after := range map[string]string{
		"A=1":        "A=1\nB=2\n",
		"A=1\r":      "A=1\r\nB=2\n",
		"# c":        "# c\nB=2\n",
		"A=1\r\nA=3": "A=1\r\nA=3\r\nB=2\r\n",
	} {
		path := filepath.Join(t.TempDir(), ".env")
		writeFile(t, path, before)
		mustApply(t, open(t, path, nil), destination.Change{Key: "B", Value: "2"})
		if got := readFile(t, path); got != after {
			t.Errorf("%q with B=2 appended: %q, want %q", before, got, after)
		}
	}
}

func TestVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	writeFile(t, path, "A=1\nB=1\n")
	f := open(t, path, nil)
	m := list(t, f)
	if m["A"].Version == m["B"].Version {
		t.Fatal("two keys with one value have the same version")
	}
	if len(m["A"].Version) != 16 {
		t.Fatalf("version %q, want 16 hex digits", m["A"].Version)
	}
	if again := list(t, f); again["A"] != m["A"] {
		t.Fatal("version changed without a change")
	}
	// Reformatting the line does not change the value, nor the version.
	writeFile(t, path, "export A='1' # same\nB=1\n")
	if again := list(t, f); again["A"] != m["A"] {
		t.Fatal("version changed when only the formatting did")
	}
	// An edit of the value does.
	writeFile(t, path, "A=2\nB=1\n")
	if again := list(t, f); again["A"].Version == m["A"].Version || again["B"] != m["B"] {
		t.Fatal("an out-of-band edit did not change exactly the version of its key")
	}
	errs, err := f.Apply(context.Background(), []destination.Change{{Key: "A", Value: "3", Expect: m["A"].Version}})
	if err != nil || !errors.Is(errs[0], destination.ErrConflict) {
		t.Fatalf("Apply with a version from before the edit = %v, %v, want ErrConflict", errs, err)
	}
	var ke *destination.KeyError
	if !errors.As(errs[0], &ke) || ke.Op != "put" || ke.Key != "A" {
		t.Fatalf("conflict error %v, want a *destination.KeyError for put A", errs[0])
	}
}

func TestInvalidKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	f := open(t, path, &Options{CreateIfMissing: true})
	bad := []string{"", "1A", "a b", "a/b", "A\nB=x", "é"}
	changes := []destination.Change{{Key: "OK", Value: "1"}}
	for _, k := range bad {
		changes = append(changes, destination.Change{Key: k, Value: "x"}, destination.Change{Key: k, Delete: true})
	}
	errs, err := f.Apply(context.Background(), changes)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil {
		t.Fatalf("valid change: %v", errs[0])
	}
	for i, err := range errs[1:] {
		if !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("%v: %v, want ErrInvalidKey", changes[i+1], err)
		}
	}
	if got := readFile(t, path); got != "OK=1\n" {
		t.Fatalf("file = %q", got)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	const canary = "canary-s3cr3t-value"
	files := []string{
		"OK=1\nTOKEN=\"" + canary + "\n",
		"OK=1\n" + canary + "\n",
		"TOKEN='x' " + canary + "\n",
		"TOKEN=\"" + canary + "\"" + canary + "\n",
		"1" + canary + "=\n",
		"A B " + canary + "=x\n",
	}
	for _, content := range files {
		dir := t.TempDir()
		path := filepath.Join(dir, ".env")
		writeFile(t, path, "OK=1\n")
		f := open(t, path, nil)
		writeFile(t, path, content)
		_, openErr := Open(path, nil)
		_, listErr := f.List(context.Background())
		_, applyErr := f.Apply(context.Background(), []destination.Change{{Key: "OK", Delete: true}})
		for _, err := range []error{openErr, listErr, applyErr} {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%q: got %v, want a *ParseError", content, err)
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(pe.Reason, "s3cr3t") {
				t.Fatalf("the error %q holds the value", err)
			}
		}
		if got := readFile(t, path); got != content {
			t.Fatal("a file that does not parse was written")
		}
	}

	// Nor in conflict errors, nor in what prints a File.
	path := filepath.Join(t.TempDir(), ".env")
	writeFile(t, path, "TOKEN="+canary+"\n")
	f := open(t, path, nil)
	errs, err := f.Apply(context.Background(), []destination.Change{
		{Key: "TOKEN", Value: canary + "2", Expect: "stale"},
		{Key: "NEW", Value: canary, Expect: "stale"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(errs), f.String(), fmt.Sprintf("%v %+v %#v", f, f, f)} {
		if strings.Contains(s, canary) {
			t.Fatalf("%q holds the value", s)
		}
	}
	if want := "dotenv.File(" + path + ")"; f.String() != want {
		t.Fatalf("String() = %q, want %q", f.String(), want)
	}
}

func TestModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	mode := func(path string) fs.FileMode {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	dir := t.TempDir()

	created := filepath.Join(dir, "created.env")
	f := open(t, created, &Options{CreateIfMissing: true})
	mustApply(t, f, destination.Change{Key: "A", Value: "1"})
	if m := mode(created); m != 0o600 {
		t.Fatalf("created with mode %v, want 0600", m)
	}

	custom := filepath.Join(dir, "custom.env")
	f = open(t, custom, &Options{CreateIfMissing: true, Mode: 0o640})
	mustApply(t, f, destination.Change{Key: "A", Value: "1"})
	if m := mode(custom); m != 0o640 {
		t.Fatalf("created with mode %v, want 0640", m)
	}

	existing := filepath.Join(dir, "existing.env")
	writeFile(t, existing, "A=1\n")
	if err := os.Chmod(existing, 0o604); err != nil {
		t.Fatal(err)
	}
	f = open(t, existing, &Options{Mode: 0o600})
	mustApply(t, f, destination.Change{Key: "B", Value: "2"})
	if m := mode(existing); m != 0o604 {
		t.Fatalf("rewritten with mode %v, want the file's own 0604", m)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestNoTempFilesLeft(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	f := open(t, path, &Options{CreateIfMissing: true})
	for i := range 5 {
		m := list(t, f)
		mustApply(t, f, destination.Change{Key: "A", Value: fmt.Sprint(i), Expect: m["A"].Version})
	}
	want := []string{".env", ".env.lock"}
	if runtime.GOOS == "windows" {
		want = []string{".env"}
	}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Fatalf("directory holds %q, want %q", got, want)
	}
}

func TestWriteFailures(t *testing.T) {
	for _, step := range []string{"create", "write", "sync", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ".env")
			writeFile(t, path, "A=1\n")
			f := open(t, path, nil)
			boom := errors.New("boom")
			f.failAt = func(s string) error {
				if s == step {
					return boom
				}
				return nil
			}
			errs, err := f.Apply(context.Background(), []destination.Change{{Key: "B", Value: "2"}})
			if !errors.Is(err, boom) || errs != nil {
				t.Fatalf("Apply = %v, %v; want the write error", errs, err)
			}
			if got := readFile(t, path); got != "A=1\n" {
				t.Fatalf("file = %q after a failed write", got)
			}
			for _, name := range dirNames(t, dir) {
				if strings.Contains(name, ".tmp-") {
					t.Fatalf("temporary file %s left behind", name)
				}
			}
			f.failAt = nil
			mustApply(t, f, destination.Change{Key: "B", Value: "2"})
		})
	}
}

func TestNoRewriteWithoutChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	writeFile(t, path, "A=1\n")
	f := open(t, path, nil)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	m := list(t, f)
	errs, err := f.Apply(context.Background(), []destination.Change{
		{Key: "A", Value: "1", Expect: m["A"].Version}, // the same value
		{Key: "GONE", Delete: true, Expect: "whatever"},
		{Key: "B", Value: "x", Expect: "stale"}, // a conflict
	})
	if err != nil || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], destination.ErrConflict) {
		t.Fatalf("Apply = %v, %v", errs, err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("the file was rewritten though nothing changed")
	}

	// A missing file that nothing is put into is not created.
	missing := filepath.Join(t.TempDir(), ".env")
	f = open(t, missing, &Options{CreateIfMissing: true})
	if m := list(t, f); len(m) != 0 {
		t.Fatalf("missing file lists %d keys", len(m))
	}
	mustApply(t, f, destination.Change{Key: "A", Delete: true})
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a delete created the file: %v", err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, ".env")
	writeFile(t, existing, "A=1\n")
	bad := filepath.Join(dir, "bad.env")
	writeFile(t, bad, "A=1\nnot a line\n")
	tests := []struct {
		name string
		path string
		opts *Options
		is   error
	}{
		{"empty path", "", nil, nil},
		{"NUL byte", "a\x00b", nil, nil},
		{"missing", filepath.Join(dir, "missing.env"), nil, fs.ErrNotExist},
		{"missing directory", filepath.Join(dir, "no", ".env"), &Options{CreateIfMissing: true}, fs.ErrNotExist},
		{"parent is a file", filepath.Join(existing, ".env"), &Options{CreateIfMissing: true}, nil},
		{"a directory", dir, &Options{CreateIfMissing: true}, nil},
		{"mode with type bits", existing, &Options{Mode: fs.ModeDir | 0o600}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(tt.path, tt.opts)
			if err == nil {
				t.Fatalf("Open = %v, want an error", f)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Open = %v, want %v", err, tt.is)
			}
		})
	}
	var pe *ParseError
	if _, err := Open(bad, nil); !errors.As(err, &pe) || pe.Line != 2 || pe.Path != bad {
		t.Fatalf("Open of a malformed file = %v, want a *ParseError for line 2", err)
	}

	// A relative path is made absolute.
	t.Chdir(dir)
	f, err := Open(".env", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path() != existing {
		t.Fatalf("Path() = %q, want %q", f.Path(), existing)
	}

	// A file removed after Open is an error without CreateIfMissing.
	if err := os.Remove(existing); err != nil {
		t.Fatal(err)
	}
	if _, err := f.List(context.Background()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List of a removed file = %v, want fs.ErrNotExist", err)
	}
	if _, err := f.Apply(context.Background(), []destination.Change{{Key: "A", Value: "1"}}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Apply to a removed file = %v, want fs.ErrNotExist", err)
	}
}

func TestSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.env")
	link := filepath.Join(dir, ".env")
	writeFile(t, target, "A=1\n")
	if err := os.Symlink("real.env", link); err != nil {
		t.Skipf("no symbolic links: %v", err)
	}
	f := open(t, link, nil)
	m := list(t, f)
	mustApply(t, f, destination.Change{Key: "A", Value: "2", Expect: m["A"].Version})
	fi, err := os.Lstat(link)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatal("the symbolic link was replaced by a file")
	}
	if got := readFile(t, target); got != "A=2\n" {
		t.Fatalf("target = %q", got)
	}
}

func TestDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, ".env")
	if err := os.Symlink("real.env", link); err != nil {
		t.Skipf("no symbolic links: %v", err)
	}
	f := open(t, link, &Options{CreateIfMissing: true})
	mustApply(t, f, destination.Change{Key: "A", Value: "1"})
	if got, err := os.Readlink(link); err != nil || got != "real.env" {
		t.Fatalf("the dangling link is now %q, %v; want a link to real.env", got, err)
	}
	if got := readFile(t, filepath.Join(dir, "real.env")); got != "A=1\n" {
		t.Fatalf("target = %q", got)
	}
}

func TestCapabilities(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), ".env"), &Options{CreateIfMissing: true})
	if !destination.CapabilitiesOf(f).Atomic {
		t.Fatal("Capabilities().Atomic = false")
	}
}

func TestNotify(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.env")
	if err := os.WriteFile(p, []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.Notify(ctx)
	time.Sleep(PollInterval / 2)
	if err := os.WriteFile(p, []byte("A=22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * PollInterval):
		t.Fatal("an edit of the file was not announced")
	}
}
