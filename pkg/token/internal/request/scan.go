package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// A small validating JSON scanner for the request. encoding/json into
// map[string]json.RawMessage and back costs more than the rest of the
// request put together, silently lets a later duplicate member win, and
// sorts the claims; the scanner below validates the syntax (RFC 8259: the
// same grammar encoding/json accepts), keeps the claims in the caller's
// order, compacts them, and finds duplicate names at any depth.

// MaxDepth bounds nesting, counted from the payload's own braces (depth 1):
// it is encoding/json's limit, so that nothing encoding/json refuses for
// depth is accepted here, and a payload's claims inside a batch may nest
// three levels less than those of a single request.
const MaxDepth = 10000

// syntaxError is invalid JSON at byte offset off.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.off) }

// isSpace is JSON's whitespace, and only that: \v, \f and U+00A0 are not.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scanner reads one JSON text held in data.
type scanner struct {
	data []byte
	off  int
	// spaced is set when whitespace was skipped inside a value, so that a
	// value already compact can be copied as is.
	spaced bool
	// unique makes a member name given twice in one object an error
	// (*duplicate).
	unique bool
}

func (s *scanner) fail(msg string) error { return &syntaxError{off: s.off, msg: msg} }

func (s *scanner) ws() {
	for s.off < len(s.data) && isSpace(s.data[s.off]) {
		s.off++
		s.spaced = true
	}
}

// expect consumes c after optional whitespace.
func (s *scanner) expect(c byte) error {
	s.ws()
	if s.off >= len(s.data) {
		return s.fail("unexpected end of JSON")
	}
	if s.data[s.off] != c {
		return s.fail(fmt.Sprintf("expected %q, found %q", c, s.data[s.off]))
	}
	s.off++
	return nil
}

// peek returns the next non-space byte (0 at the end) without consuming it.
func (s *scanner) peek() byte {
	s.ws()
	if s.off >= len(s.data) {
		return 0
	}
	return s.data[s.off]
}

// next consumes what follows a member or an element: more is true after a
// comma, false after close, the end of the object or array. It runs after
// every member and element, so the compact case is tried first, before any
// whitespace is looked for.
func (s *scanner) next(close byte) (more bool, err error) {
	if s.off < len(s.data) {
		if c := s.data[s.off]; c == ',' || c == close {
			s.off++
			return c == ',', nil
		}
	}
	return s.nextSpaced(close)
}

// nextSpaced is next after whitespace, or at an error.
func (s *scanner) nextSpaced(close byte) (bool, error) {
	switch s.peek() {
	case ',':
		s.off++
		return true, nil
	case close:
		s.off++
		return false, nil
	}
	if s.off >= len(s.data) {
		return false, s.fail("unexpected end of JSON")
	}
	return false, s.fail(fmt.Sprintf("expected ',' or %q", close))
}

// str consumes a string and returns it with its quotes, and whether it
// holds an escape. The payload as a whole was checked to be UTF-8.
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	s.ws()
	start := s.off
	if s.off >= len(s.data) || s.data[s.off] != '"' {
		return nil, false, s.fail("expected a string")
	}
	s.off++
	for s.off < len(s.data) {
		c := s.data[s.off]
		switch {
		case c == '"':
			s.off++
			return s.data[start:s.off], escaped, nil
		case c == '\\':
			escaped = true
			if err := s.escape(); err != nil {
				return nil, false, err
			}
		case c < 0x20:
			return nil, false, s.fail("control character in a string")
		default:
			s.off++
		}
	}
	return nil, false, s.fail("unexpected end of JSON in a string")
}

// escape consumes the escape sequence at the scanner, backslash included.
// A \u escape of a lone surrogate is valid JSON; encoding/json reads it as
// U+FFFD, and so does decodeName.
func (s *scanner) escape() error {
	if s.off+1 >= len(s.data) {
		return s.fail("unexpected end of JSON in a string")
	}
	switch s.data[s.off+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.off += 2
		return nil
	case 'u':
		if s.off+6 > len(s.data) {
			return s.fail("unexpected end of JSON in a string")
		}
		for _, h := range s.data[s.off+2 : s.off+6] {
			if !isHex(h) {
				return s.fail("invalid \\u escape")
			}
		}
		s.off += 6
		return nil
	}
	return s.fail("invalid escape")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digits returns the end of the run of digits at d[i:], and false when
// there is none.
func digits(d []byte, i int) (int, bool) {
	j := i
	for j < len(d) && isDigit(d[j]) {
		j++
	}
	return j, j > i
}

// number consumes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	d, i := s.data, s.off
	if i < len(d) && d[i] == '-' {
		i++
	}
	i, ok := integerDigits(d, i)
	if ok && i < len(d) && d[i] == '.' {
		i, ok = digits(d, i+1)
	}
	if ok && i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i, ok = exponentDigits(d, i+1)
	}
	s.off = i
	if !ok {
		return s.fail("invalid number")
	}
	return nil
}

// integerDigits returns the end of the integer part of a number at d[i:].
// A leading zero ends it: in "01" the 1 is left for the caller, which
// refuses it as it would any byte after a value.
func integerDigits(d []byte, i int) (int, bool) {
	if i < len(d) && d[i] == '0' {
		return i + 1, true
	}
	return digits(d, i)
}

// exponentDigits returns the end of the exponent at d[i:], after the 'e'.
func exponentDigits(d []byte, i int) (int, bool) {
	if i < len(d) && (d[i] == '+' || d[i] == '-') {
		i++
	}
	return digits(d, i)
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.data[s.off:], []byte(lit)) {
		return s.fail("invalid literal")
	}
	s.off += len(lit)
	return nil
}

// value consumes one value inside a container at depth (0 for the payload
// itself) and returns its bytes (without the whitespace around it).
func (s *scanner) value(depth int) ([]byte, error) {
	s.ws()
	start := s.off
	if s.off >= len(s.data) {
		return nil, s.fail("unexpected end of JSON")
	}
	var err error
	switch c := s.data[s.off]; {
	case c == '"':
		_, _, err = s.str()
	case c == '{':
		err = s.object(depth + 1)
	case c == '[':
		err = s.array(depth + 1)
	case c == '-' || isDigit(c):
		err = s.number()
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	default:
		err = s.fail(fmt.Sprintf("invalid character %q looking for a value", c))
	}
	if err != nil {
		return nil, err
	}
	return s.data[start:s.off], nil
}

// tooDeep is the error for a container at depth beyond MaxDepth.
func (s *scanner) tooDeep() error {
	return s.fail(fmt.Sprintf("nested deeper than %d levels", MaxDepth))
}

// array consumes the array at the scanner, at depth.
func (s *scanner) array(depth int) error {
	if depth > MaxDepth {
		return s.tooDeep()
	}
	s.off++ // '['
	if s.peek() == ']' {
		s.off++
		return nil
	}
	for i := 0; ; i++ {
		if _, err := s.value(depth); err != nil {
			if d, ok := err.(*duplicate); ok {
				d.path = append(d.path, "["+strconv.Itoa(i)+"]")
			}
			return err
		}
		if more, err := s.next(']'); err != nil || !more {
			return err
		}
	}
}

// object consumes the object at the scanner, at depth; with s.unique, a
// name given twice in it is a *duplicate.
func (s *scanner) object(depth int) error {
	if depth > MaxDepth {
		return s.tooDeep()
	}
	s.off++ // '{'
	if s.peek() == '}' {
		s.off++
		return nil
	}
	var names *nameSet
	if s.unique {
		names = new(nameSet) // stays on the stack
	}
	for {
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		var name []byte
		if names != nil {
			name = decodeName(raw, esc)
			if !names.add(name) {
				return &duplicate{name: bytes.Clone(name)}
			}
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if _, err := s.value(depth); err != nil {
			if d, ok := err.(*duplicate); ok {
				d.path = append(d.path, "."+shorten(name))
			}
			return err
		}
		if more, err := s.next('}'); err != nil || !more {
			return err
		}
	}
}

func (s *scanner) end() error {
	s.ws()
	if s.off != len(s.data) {
		return s.fail("data after the JSON value")
	}
	return nil
}

// decodeName returns the unquoted name; escapes are rare in names and take
// the slow road, so that "\u0065xp" is known to be "exp". Lone surrogates
// become U+FFFD, as encoding/json reads them, so that "\ud800" and
// "\udbff" are the same name to this scanner as to a verifier.
func decodeName(raw []byte, escaped bool) []byte {
	if !escaped {
		return raw[1 : len(raw)-1]
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return raw // cannot happen: the scanner validated raw
	}
	return []byte(name)
}

// appendCompact appends the validated value v without insignificant
// whitespace.
func appendCompact(dst, v []byte) []byte {
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inString:
			if c == '\\' {
				dst = append(dst, c, v[i+1])
				i++
				continue
			}
			if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case isSpace(c):
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// nameSet finds a repeated name among an object's members: a linear search
// for the few members claims usually have, a map past that.
type nameSet struct {
	few  [8][]byte
	n    int
	many map[string]struct{}
}

// add reports false if name was already added.
func (ns *nameSet) add(name []byte) bool {
	if ns.many != nil {
		if _, dup := ns.many[string(name)]; dup {
			return false
		}
		ns.many[string(name)] = struct{}{}
		return true
	}
	for _, seen := range ns.few[:ns.n] {
		if bytes.Equal(seen, name) {
			return false
		}
	}
	if ns.n < len(ns.few) {
		ns.few[ns.n] = name
		ns.n++
		return true
	}
	ns.many = make(map[string]struct{}, 2*len(ns.few))
	for _, seen := range ns.few[:ns.n] {
		ns.many[string(seen)] = struct{}{}
	}
	ns.many[string(name)] = struct{}{}
	return true
}

// duplicate is a member name found twice in one object, and the path from
// the claims object to that object, innermost first; it is built while the
// error unwinds, so that the walk itself allocates nothing. The names in
// the path are shortened already.
type duplicate struct {
	name []byte
	path []string
}

func (d *duplicate) Error() string { return "duplicate member " + strconv.Quote(string(d.name)) }

// maxPathSteps is how many steps of a duplicate's path an error message
// spells out: the outermost and the innermost halves of them, when the
// path is longer.
const maxPathSteps = 16

// where is the path to the object that names d.name twice, outermost
// first, from the claims object.
func (d *duplicate) where() string {
	var b strings.Builder
	n := len(d.path)
	for i := n - 1; i >= 0; i-- {
		if n > maxPathSteps && i == n-maxPathSteps/2-1 {
			fmt.Fprintf(&b, "(...%d more...)", n-maxPathSteps)
			i = maxPathSteps/2 - 1
		}
		b.WriteString(d.path[i])
	}
	return b.String()
}
