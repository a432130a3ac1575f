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
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return dst, nil
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return dst, errSyntax
		}
		raw, escaped, err := s.str()
		if err != nil {
			return dst, err
		}
		name := raw
		if escaped {
			off := len(s.bufs)
			s.bufs = unescape(s.bufs, raw)
			name = s.bufs[off:len(s.bufs):len(s.bufs)]
		}
		var fresh bool
		if names, long, fresh = addName(names, long, name); !fresh {
			return dst, errDuplicate
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return dst, errSyntax
		}
		s.pos++
		s.skipSpace()
		start := s.pos
		if err := s.value(depth + 1); err != nil {
			return dst, err
		}
		if keep {
			dst = append(dst, member{name: name, value: s.data[start:s.pos]})
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return dst, errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return dst, nil
		default:
			return dst, errSyntax
		}
	}
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
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return errSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return errSyntax
	}
	s.pos += len(word)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return errSyntax
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return errSyntax
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return errSyntax
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return nil
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
			i++
			if i >= len(d) {
				return nil, false, errSyntax
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(d)-i < 5 || !isHex(d[i+1]) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) {
					return nil, false, errSyntax
				}
				i += 4
			default:
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
