package secretsync_test

import (
	"go/ast"
	"go/token"
	"strings"
	"testing"
)

// TestOptionsByPointer keeps one constructor style (see "Conventions" in
// the package documentation): no exported function or method of the
// library, its test-support packages included, takes an options struct
// (a type whose name ends in "Options") by value. A test fixture's
// variadic options (vaulttest's NewMount(t, opts...)) are allowed.
func TestOptionsByPointer(t *testing.T) {
	checked := 0
	eachLibraryFile(t, true, func(path string, fset *token.FileSet, f *ast.File) {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || !fn.Name.IsExported() {
				continue
			}
			for _, field := range fn.Type.Params.List {
				name := ""
				switch typ := field.Type.(type) {
				case *ast.Ident:
					name = typ.Name
				case *ast.SelectorExpr:
					name = typ.Sel.Name
				case *ast.StarExpr:
					checked++
				}
				if strings.HasSuffix(name, "Options") {
					t.Errorf("%s: %s takes %s by value; take *%s (nil meaning the zero value)", fset.Position(field.Pos()), fn.Name.Name, name, name)
				}
			}
		}
	})
	if checked == 0 {
		t.Fatal("no pointer parameter found: the walk checked nothing")
	}
}
