package dotenv

import (
	"strconv"
	"strings"
)

// ParseError reports a dotenv file that cannot be read. It names the file,
// the line and what is wrong, never the text of the line: a malformed line
// may well hold a secret value.
//
// Nothing is written to a file that does not parse: fix the line (or move
// the file aside) and try again.
type ParseError struct {
	Path   string // the file
	Line   int    // 1-based line where the malformed entry starts
	Reason string // what is wrong, without any text of the file
}

// Error returns "dotenv: path:line: reason".
func (e *ParseError) Error() string {
	return "dotenv: " + e.Path + ":" + strconv.Itoa(e.Line) + ": " + e.Reason
}

// Reasons of a ParseError. They are fixed strings so that no text of the
// file, which may be a secret, can ever reach an error.
const (
	reasonNoKey        = "expected KEY=value: missing key"
	reasonBadKey       = "invalid character in key (keys match [A-Za-z_][A-Za-z0-9_.-]*)"
	reasonNoEquals     = "expected KEY=value: missing '=' after the key"
	reasonUnterminated = "quoted value is not terminated"
	reasonAfterQuote   = "unexpected text after the closing quote"
)

// segment is one piece of a dotenv file: a variable assignment (which may
// span several lines when its value is quoted), or one line that is blank,
// a comment, or both.
type segment struct {
	raw   string // the text as read, line ending included; "" for a new entry
	line  int    // 1-based first line; 0 for a new entry
	isVar bool   // an assignment, with the fields below

	key, value string
	lead       string // what came before the key: indentation, "export "
	comment    string // a trailing comment with the blanks before it, or ""
	eol        string // the line ending: "\n", "\r\n", "\r" or "" at the end

	dirty   bool // rewrite from the fields instead of raw
	deleted bool
}

// document is a parsed dotenv file that can be edited and written back
// with everything not edited kept byte for byte.
type document struct {
	segs  []*segment
	index map[string]int // key -> index in segs of its last (winning) entry
	eol   string         // the line ending for new entries
}

// validKey reports whether k can be a key: [A-Za-z_][A-Za-z0-9_.-]*.
func validKey(k string) bool {
	if k == "" || !isKeyStart(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		if !isKeyByte(k[i]) {
			return false
		}
	}
	return true
}

func isKeyStart(c byte) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

func isKeyByte(c byte) bool {
	return isKeyStart(c) || '0' <= c && c <= '9' || c == '.' || c == '-'
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

const bom = "\ufeff"

// parse parses the content of the dotenv file at path (path is only used
// in errors). See the package documentation for the format.
func parse(path, src string) (*document, error) {
	d := &document{index: make(map[string]int), eol: "\n"}
	eolSeen := false
	pos, line := 0, 1
	for pos < len(src) {
		start, startLine := pos, line
		// The physical line: text, then its ending.
		end := strings.IndexByte(src[pos:], '\n')
		next := len(src)
		if end < 0 {
			end = len(src)
		} else {
			end += pos
			next = end + 1
		}
		text := src[pos:end]
		eol := src[end:next]
		if strings.HasSuffix(text, "\r") {
			text = text[:len(text)-1]
			eol = "\r" + eol
		}
		if !eolSeen && strings.HasSuffix(eol, "\n") {
			d.eol, eolSeen = eol, true
		}
		i := 0
		if pos == 0 && strings.HasPrefix(text, bom) {
			i = len(bom)
		}
		for i < len(text) && isBlank(text[i]) {
			i++
		}
		if i == len(text) || text[i] == '#' {
			d.segs = append(d.segs, &segment{raw: src[start:next], line: startLine})
			pos, line = next, line+1
			continue
		}
		fail := func(reason string) error { return &ParseError{Path: path, Line: startLine, Reason: reason} }

		// [export ]KEY
		if rest, ok := strings.CutPrefix(text[i:], "export"); ok {
			j := 0
			for j < len(rest) && isBlank(rest[j]) {
				j++
			}
			if j > 0 && j < len(rest) && isKeyStart(rest[j]) {
				i += len("export") + j
			}
		}
		s := &segment{line: startLine, isVar: true, lead: text[:i]}
		k := i
		for k < len(text) && isKeyByte(text[k]) {
			k++
		}
		s.key = text[i:k]
		switch {
		case s.key == "" && k < len(text) && text[k] == '=':
			return nil, fail(reasonNoKey)
		case s.key == "" || !isKeyStart(s.key[0]):
			return nil, fail(reasonBadKey)
		}
		for k < len(text) && isBlank(text[k]) {
			k++
		}
		if k == len(text) {
			return nil, fail(reasonNoEquals)
		}
		if text[k] != '=' {
			return nil, fail(reasonBadKey)
		}
		k++ // past '='
		v := k
		for v < len(text) && isBlank(text[v]) {
			v++
		}

		if v < len(text) && (text[v] == '"' || text[v] == '\'') {
			// A quoted value may run over several lines: scan src itself.
			quote := text[v]
			value, after, lines, ok := scanQuoted(src, pos+v+1, quote)
			if !ok {
				return nil, fail(reasonUnterminated)
			}
			s.value = value
			line += lines
			// The rest of the line where the value ends.
			end := strings.IndexByte(src[after:], '\n')
			next = len(src)
			if end < 0 {
				end = len(src)
			} else {
				end += after
				next = end + 1
			}
			rest := src[after:end]
			eol = src[end:next]
			if strings.HasSuffix(rest, "\r") {
				rest = rest[:len(rest)-1]
				eol = "\r" + eol
			}
			c := 0
			for c < len(rest) && isBlank(rest[c]) {
				c++
			}
			if c < len(rest) && rest[c] != '#' {
				return nil, fail(reasonAfterQuote)
			}
			if c < len(rest) {
				s.comment = rest
			}
		} else {
			raw := text[k:]
			cut := len(raw)
			for j := 1; j < len(raw); j++ {
				if raw[j] == '#' && isBlank(raw[j-1]) {
					cut = j
					break
				}
			}
			body := strings.TrimRight(raw[:cut], " \t")
			if cut < len(raw) {
				s.comment = raw[len(body):]
			}
			s.value = strings.TrimLeft(body, " \t")
		}
		s.eol = eol
		s.raw = src[start:next]
		d.index[s.key] = len(d.segs) // a later duplicate wins
		d.segs = append(d.segs, s)
		pos, line = next, line+1
	}
	return d, nil
}

// scanQuoted reads a quoted value from src[i:], just past the opening
// quote. It returns the value, the offset just past the closing quote and
// how many line breaks the value spans; ok is false if the quote is never
// closed. A line break inside the value ("\n" or "\r\n") reads as "\n".
// Single quotes are literal; double quotes know the escapes \n \r \t \" \\
// \$ and \`, and keep any other backslash as it is.
func scanQuoted(src string, i int, quote byte) (value string, after, lines int, ok bool) {
	var b strings.Builder
	for i < len(src) {
		c := src[i]
		switch {
		case c == quote:
			return b.String(), i + 1, lines, true
		case c == '\r' && i+1 < len(src) && src[i+1] == '\n':
			b.WriteByte('\n')
			lines++
			i += 2
			continue
		case c == '\n':
			lines++
		case c == '\\' && quote == '"' && i+1 < len(src):
			switch e := src[i+1]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '$', '`':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				i++
				continue // e is read on its own: it may be a quote or a line break
			}
			i += 2
			continue
		}
		b.WriteByte(c)
		i++
	}
	return "", 0, 0, false
}

// formatValue returns v as it is written after "KEY=": bare when it is
// made only of characters that need no quoting in a dotenv file or a POSIX
// shell, otherwise in double quotes with escapes, on one line. Parsing the
// result gives back exactly v.
func formatValue(v string) string {
	if v != "" && bareSafe(v) {
		return v
	}
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '"', '\\', '$', '`':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// bareSafe reports whether v can be written without quotes.
func bareSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("_-.,/:@%+=", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// get returns the value of key and whether it is set.
func (d *document) get(key string) (string, bool) {
	i, ok := d.index[key]
	if !ok {
		return "", false
	}
	return d.segs[i].value, true
}

// values returns every key with its value.
func (d *document) values() map[string]string {
	m := make(map[string]string, len(d.index))
	for k, i := range d.index {
		m[k] = d.segs[i].value
	}
	return m
}

// set puts value for key: the winning entry of key is rewritten in place
// (keeping its indentation, "export " and trailing comment), or a new entry
// is appended at the end.
func (d *document) set(key, value string) {
	if i, ok := d.index[key]; ok {
		s := d.segs[i]
		s.value, s.dirty = value, true
		return
	}
	d.index[key] = len(d.segs)
	d.segs = append(d.segs, &segment{isVar: true, key: key, value: value, eol: d.eol, dirty: true})
}

// remove deletes every entry of key, so that no earlier duplicate comes
// back into view.
func (d *document) remove(key string) {
	if _, ok := d.index[key]; !ok {
		return
	}
	for _, s := range d.segs {
		if s.isVar && s.key == key {
			s.deleted = true
		}
	}
	delete(d.index, key)
}

// render returns the file: segments not edited as they were read, edited
// ones formatted, deleted ones left out.
func (d *document) render() []byte {
	var b strings.Builder
	for _, s := range d.segs {
		if s.deleted {
			continue
		}
		if !s.dirty {
			b.WriteString(s.raw)
			continue
		}
		// Only the last line read can lack a line ending ("\n"); one is
		// needed before anything that follows it.
		if out := b.String(); out != "" && !strings.HasSuffix(out, "\n") {
			if strings.HasSuffix(out, "\r") {
				b.WriteByte('\n')
			} else {
				b.WriteString(d.eol)
			}
		}
		b.WriteString(s.lead)
		b.WriteString(s.key)
		b.WriteByte('=')
		b.WriteString(formatValue(s.value))
		if s.comment != "" {
			if !isBlank(s.comment[0]) {
				b.WriteByte(' ')
			}
			b.WriteString(s.comment)
		}
		b.WriteString(s.eol)
	}
	return []byte(b.String())
}
