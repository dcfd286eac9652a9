package secretsync_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// eachLibraryFile parses every non-test Go file of the library (the
// examples, which are programs, and the scripts excluded; with
// withTestSupport false, the test-support packages, whose directories end
// in "test", too) and calls fn with its slash-separated path.
func eachLibraryFile(t *testing.T, withTestSupport bool, fn func(path string, fset *token.FileSet, f *ast.File)) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == "." {
				return nil
			}
			if path == "examples" || path == "scripts" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") ||
				!withTestSupport && strings.HasSuffix(d.Name(), "test") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		fn(filepath.ToSlash(path), fset, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
