package verify

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The header and the claims are read by a small JSON scanner instead of
// encoding/json: it is several times faster on the warm path, and it refuses
// what encoding/json lets through and other verifiers read differently. A
// name given twice in one object (encoding/json keeps the last, some
// libraries the first, so {"aud":"a","aud":"b"} would mean one thing here
// and another to the service behind the authorizer), invalid UTF-8 (which
// encoding/json silently replaces) and nesting deeper than maxDepth are
// errors. Everything else follows RFC 8259 exactly; FuzzParseObject checks
// it against encoding/json.

// maxDepth bounds the nesting of arrays and objects in a header or claims.
const maxDepth = 64

// member is one name and value of a JSON object.
type member struct {
	name  []byte // decoded
	value []byte // the raw JSON text of the value
}

var (
	errSyntax    = errors.New("not valid JSON")
	errNotObject = errors.New("not a JSON object")
	errDuplicate = errors.New("a member name is given twice in one object")
	errDepth     = errors.New("nested too deeply")
	errUTF8      = errors.New("invalid UTF-8 in a string")
)

type scanner struct {
	data []byte
	pos  int
	bufs []byte // backing store of decoded names that had escapes
}

// parseObject checks that data is one JSON object and appends its members
// to dst, in order.
func parseObject(data []byte, dst []member) ([]member, error) {
	s := scanner{data: data}
	s.skipSpace()
	if s.pos >= len(data) || data[s.pos] != '{' {
		if s.pos < len(data) {
			if err := s.value(0); err != nil {
				return dst, err
			}
			if s.skipSpace(); s.pos == len(data) {
				return dst, errNotObject
			}
		}
		return dst, errSyntax
	}
	start := len(dst)
	dst, err := s.object(0, dst, true)
	if err != nil {
		return dst[:start], err
	}
	s.skipSpace()
	if s.pos != len(data) {
		return dst[:start], errSyntax
	}
	return dst, nil
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// object scans an object at s.pos (on its '{'). With keep, its members are
// appended to dst.
func (s *scanner) object(depth int, dst []member, keep bool) ([]member, error) {
	if depth >= maxDepth {
		return dst, errDepth
	}
	s.pos++ // '{'
	// The names seen so far, to refuse one given twice.
	var local [16][]byte
	names := local[:0]
	var long map[string]struct{}
	if s.closes('}') {
		return dst, nil
	}
	for more := true; more; {
		name, err := s.memberName()
		if err != nil {
			return dst, err
		}
		var fresh bool
		if names, long, fresh = addName(names, long, name); !fresh {
			return dst, errDuplicate
		}
		if err := s.expect(':'); err != nil {
			return dst, err
		}
		s.skipSpace()
		start := s.pos
		if err := s.value(depth + 1); err != nil {
			return dst, err
		}
		if keep {
			dst = append(dst, member{name: name, value: s.data[start:s.pos]})
		}
		if more, err = s.next('}'); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// memberName scans a member's name, after any space, and returns it decoded. A
// name without escapes is returned in place; one with escapes is decoded
// into s.bufs, capped so that a later append cannot overwrite it.
func (s *scanner) memberName() ([]byte, error) {
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return nil, errSyntax
	}
	raw, escaped, err := s.str()
	if err != nil || !escaped {
		return raw, err
	}
	off := len(s.bufs)
	s.bufs = unescape(s.bufs, raw)
	return s.bufs[off:len(s.bufs):len(s.bufs)], nil
}

// expect consumes c, after any space: the ':' after a member's name.
func (s *scanner) expect(c byte) error {
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != c {
		return errSyntax
	}
	s.pos++
	return nil
}

// closes consumes end, after any space, if it is next: the '}' or ']' of
// an empty object or array, which the loop over its elements would refuse.
func (s *scanner) closes(end byte) bool {
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == end {
		s.pos++
		return true
	}
	return false
}

// next consumes what follows an element of an object or array, after any
// space: a ',' (true: another element follows) or end (false: the last).
func (s *scanner) next(end byte) (bool, error) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false, errSyntax
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		return true, nil
	case end:
		s.pos++
		return false, nil
	}
	return false, errSyntax
}

// addName adds name to the names of one object, and reports false if it is
// there already. The names are a list while short, a map once long, so that
// a header of thousands of members costs linear time.
func addName(list [][]byte, m map[string]struct{}, name []byte) ([][]byte, map[string]struct{}, bool) {
	if m != nil {
		if _, ok := m[string(name)]; ok {
			return list, m, false
		}
		m[string(name)] = struct{}{}
		return list, m, true
	}
	for _, x := range list {
		if bytes.Equal(x, name) {
			return list, m, false
		}
	}
	if len(list) < 32 {
		return append(list, name), m, true
	}
	m = make(map[string]struct{}, 2*len(list))
	for _, x := range list {
		m[string(x)] = struct{}{}
	}
	m[string(name)] = struct{}{}
	return list, m, true
}

// value scans one value at s.pos, after any space.
func (s *scanner) value(depth int) error {
	if s.pos >= len(s.data) {
		return errSyntax
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		_, err := s.object(depth, nil, false)
		return err
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return errSyntax
}

func (s *scanner) array(depth int) error {
	if depth >= maxDepth {
		return errDepth
	}
	s.pos++ // '['
	if s.closes(']') {
		return nil
	}
	for more := true; more; {
		s.skipSpace()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		var err error
		if more, err = s.next(']'); err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return errSyntax
	}
	s.pos += len(word)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, leaving
// s.pos where it was if the text at it is not a number.
func (s *scanner) number() error {
	d, i := s.data, s.pos
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
	if !ok {
		return errSyntax
	}
	s.pos = i
	return nil
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

// str scans a string at s.pos (on its '"') and returns its raw content,
// between the quotes, and whether it holds escapes.
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	d := s.data
	start := s.pos + 1
	ascii := true
	for i := start; i < len(d); i++ {
		switch c := d[i]; {
		case c == '"':
			raw = d[start:i]
			if !ascii && !utf8.Valid(raw) {
				return nil, false, errUTF8
			}
			s.pos = i + 1
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			var ok bool
			if i, ok = escapeEnd(d, i); !ok {
				return nil, false, errSyntax
			}
		case c < 0x20:
			return nil, false, errSyntax
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false, errSyntax
}

// escapeEnd checks the escape whose backslash is at d[i] and returns the
// index of its last byte, so that str goes on after it; false: it is not
// one of the escapes RFC 8259 allows.
func escapeEnd(d []byte, i int) (int, bool) {
	i++
	if i >= len(d) {
		return i, false
	}
	switch d[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i, true
	case 'u':
		if len(d)-i < 5 {
			return i, false
		}
		for _, h := range d[i+1 : i+5] {
			if !isHex(h) {
				return i, false
			}
		}
		return i + 4, true
	}
	return i, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape appends the decoded form of raw, the checked content of a JSON
// string, to dst. Like encoding/json, an unpaired surrogate becomes U+FFFD.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hexVal(raw[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2 = hexVal(raw[i+3 : i+7])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
	}
	return dst
}

// decodeString returns the value of a JSON string value (quotes included),
// or false if v is not a string.
func decodeString(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw, true
	}
	return unescape(nil, raw), true
}

// parseNumericDate reads a NumericDate (RFC 7519): a JSON number of seconds
// since the epoch, fractions allowed.
func parseNumericDate(v []byte) (float64, bool) {
	if len(v) == 0 || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		return 0, false
	}
	if len(v) <= 15 {
		n, plain := int64(0), true
		for i, c := range v {
			if c < '0' || c > '9' {
				if !(i == 0 && c == '-') {
					plain = false
					break
				}
				continue
			}
			n = n*10 + int64(c-'0')
		}
		if plain {
			if v[0] == '-' {
				n = -n
			}
			return float64(n), true
		}
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil { // out of range: ±Inf
		return 0, false
	}
	return f, true
}
