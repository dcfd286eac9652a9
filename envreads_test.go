package secretsync_test

import (
	"go/ast"
	"go/token"
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
	eachLibraryFile(t, false, func(path string, fset *token.FileSet, f *ast.File) {
		if envReaders[path] {
			return
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
	})
}
