package gcpsmtest

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// A filter is a parsed List filter, in the language of Google's
// List-operation filtering (AIP-160) as Secret Manager supports it:
// comparisons (=, !=, <, >, <=, >=, and ':' for "has"), AND, OR (which
// binds tighter than AND, as AIP-160 says), NOT and parentheses.
type filter interface {
	match(fields fieldFunc) (bool, error)
}

// fieldFunc returns the value of a field of a resource, and whether it is
// present. For a map field ("labels"), name is "labels.KEY"; "labels"
// alone returns the keys joined by "\x00".
type fieldFunc func(name string) (value string, present bool, err error)

type andFilter []filter
type orFilter []filter
type notFilter struct{ f filter }
type cmpFilter struct{ field, op, value string }

func (a andFilter) match(ff fieldFunc) (bool, error) {
	for _, f := range a {
		ok, err := f.match(ff)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (o orFilter) match(ff fieldFunc) (bool, error) {
	for _, f := range o {
		ok, err := f.match(ff)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func (n notFilter) match(ff fieldFunc) (bool, error) {
	ok, err := n.f.match(ff)
	return !ok, err
}

func (c cmpFilter) match(ff fieldFunc) (bool, error) {
	if c.field == "labels" && c.op == ":" {
		keys, _, err := ff("labels")
		if err != nil {
			return false, err
		}
		for k := range strings.SplitSeq(keys, "\x00") {
			if k != "" && (c.value == "*" || k == c.value) {
				return true, nil
			}
		}
		return false, nil
	}
	v, present, err := ff(c.field)
	if err != nil {
		return false, err
	}
	switch c.op {
	case ":":
		if c.value == "*" {
			return present, nil
		}
		if strings.HasPrefix(c.field, "labels.") {
			return present && v == c.value, nil
		}
		return present && strings.Contains(v, c.value), nil
	case "=":
		return present && v == c.value, nil
	case "!=":
		return !present || v != c.value, nil
	}
	// Ordered comparisons: times, or else strings.
	if !present {
		return false, nil
	}
	x, y := v, c.value
	if tx, err1 := time.Parse(time.RFC3339Nano, x); err1 == nil {
		ty, err2 := time.Parse(time.RFC3339Nano, y)
		if err2 != nil {
			return false, fmt.Errorf("%q is not a timestamp", y)
		}
		x, y = fmt.Sprintf("%020d", tx.UnixNano()), fmt.Sprintf("%020d", ty.UnixNano())
	}
	switch c.op {
	case "<":
		return x < y, nil
	case ">":
		return x > y, nil
	case "<=":
		return x <= y, nil
	case ">=":
		return x >= y, nil
	}
	return false, fmt.Errorf("unknown operator %q", c.op)
}

// parseFilter parses a filter; "" matches everything.
func parseFilter(src string) (filter, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return andFilter{}, nil
	}
	p := &parser{toks: toks}
	f, err := p.and()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i])
	}
	return f, nil
}

type parser struct {
	toks []string
	i    int
}

func (p *parser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *parser) and() (filter, error) {
	var fs andFilter
	for {
		f, err := p.or()
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
		switch p.peek() {
		case "AND":
			p.i++
		case "", ")":
			return fs, nil
		default: // juxtaposition is AND
		}
	}
}

func (p *parser) or() (filter, error) {
	var fs orFilter
	for {
		f, err := p.unary()
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
		if p.peek() != "OR" {
			if len(fs) == 1 {
				return fs[0], nil
			}
			return fs, nil
		}
		p.i++
	}
}

func (p *parser) unary() (filter, error) {
	switch p.peek() {
	case "NOT":
		p.i++
		f, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notFilter{f}, nil
	case "(":
		p.i++
		f, err := p.and()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, errors.New("missing ')'")
		}
		p.i++
		return f, nil
	case "", ")", "AND", "OR":
		return nil, fmt.Errorf("expected a comparison, found %q", p.peek())
	}
	field := p.toks[p.i]
	p.i++
	op := p.peek()
	switch op {
	case "=", "!=", ":", "<", ">", "<=", ">=":
	default:
		return nil, fmt.Errorf("expected an operator after %q", field)
	}
	p.i++
	if p.i >= len(p.toks) {
		return nil, fmt.Errorf("missing the value of %q", field)
	}
	v := p.toks[p.i]
	p.i++
	return cmpFilter{field: field, op: op, value: v}, nil
}

// tokenize splits a filter into fields, operators, values (quoted or
// not), parentheses and keywords. A value runs to the next space or ')'.
func tokenize(src string) ([]string, error) {
	var toks []string
	rs := []rune(src)
	afterOp := false
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
			continue
		case r == '(' || r == ')':
			toks = append(toks, string(r))
			i++
			afterOp = false
			continue
		case r == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) {
					j++
				}
				b.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, errors.New("unterminated string")
			}
			toks = append(toks, b.String())
			i = j + 1
			afterOp = false
			continue
		}
		if !afterOp {
			for _, op := range []string{"!=", "<=", ">=", "=", ":", "<", ">"} {
				if strings.HasPrefix(string(rs[i:]), op) {
					toks = append(toks, op)
					i += len(op)
					afterOp = true
					break
				}
			}
			if afterOp {
				continue
			}
		}
		j := i
		for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != ')' && rs[j] != '(' &&
			(afterOp || !strings.ContainsRune("=!<>:", rs[j])) {
			j++
		}
		toks = append(toks, string(rs[i:j]))
		i = j
		afterOp = false
	}
	return toks, nil
}
