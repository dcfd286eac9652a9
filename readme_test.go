package secretsync_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestReadmeCodeIsExample checks that the Go code of the README's "Use"
// section is exactly the imports and the body of Example_readme, which the
// tests compile and run, so that the README cannot show code that no longer
// builds or no longer prints what it says.
func TestReadmeCodeIsExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readmeUseCode(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	want, err := exampleCode("readme_example_test.go", "Example_readme")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("README.md's Use code differs from Example_readme (readme_example_test.go) at line %d of the block:\nREADME:  %q\nexample: %q\nthe README must show the example's imports, a blank line, then its body unindented by one tab", i+1, g, w)
			}
		}
	}
}

// readmeUseCode returns the first ```go block after the "## Use" heading.
func readmeUseCode(readme string) (string, error) {
	_, use, ok := strings.Cut(readme, "\n## Use\n")
	if !ok {
		return "", errorString("README.md has no \"## Use\" section")
	}
	_, block, ok := strings.Cut(use, "```go\n")
	if !ok {
		return "", errorString("README.md's Use section has no ```go block")
	}
	code, _, ok := strings.Cut(block, "```")
	if !ok {
		return "", errorString("README.md's Use code block is not closed")
	}
	return code, nil
}

// exampleCode returns the import declaration of file, a blank line, and the
// body of its function name with one level of indentation removed.
func exampleCode(file, name string) (string, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		return "", err
	}
	off := func(p token.Pos) int { return fset.Position(p).Offset }
	var imports string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			imports = string(src[off(g.Pos()):off(g.End())])
		}
	}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != name {
			continue
		}
		body := string(src[off(fn.Body.Lbrace)+1 : off(fn.Body.Rbrace)])
		body = strings.TrimPrefix(body, "\n")
		lines := strings.Split(body, "\n")
		for i, l := range lines {
			lines[i] = strings.TrimPrefix(l, "\t")
		}
		return imports + "\n\n" + strings.Join(lines, "\n"), nil
	}
	return "", errorString(file + " has no function " + name)
}

type errorString string

func (e errorString) Error() string { return string(e) }
