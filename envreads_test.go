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

// envReaders are the library's explicit readers of the process's
// environment: a Credential that names a variable, and env.FromOS.
var envReaders = map[string]bool{
	"connection/config.go":   true,
	"destination/env/env.go": true,
}

// TestNoHiddenEnvironmentReads keeps the library from reading the process's
// environment behind its caller's back: no library file but the explicit
// readers above calls os.Getenv, os.LookupEnv or os.Environ, or builds a
// Vault client with api.DefaultConfig (which reads VAULT_*). Tests, the
// examples (programs) and the test-support packages (…test) may.
func TestNoHiddenEnvironmentReads(t *testing.T) {
	hidden := map[string]bool{"os.Getenv": true, "os.LookupEnv": true, "os.Environ": true, "api.DefaultConfig": true}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == "examples" || path == "scripts" || strings.HasPrefix(d.Name(), ".") && path != "." ||
				path != "." && strings.HasSuffix(d.Name(), "test") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || envReaders[filepath.ToSlash(path)] {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && hidden[x.Name+"."+sel.Sel.Name] {
				t.Errorf("%s: %s.%s reads the environment; take what is needed as an argument", fset.Position(sel.Pos()), x.Name, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
