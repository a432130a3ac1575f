package token

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// MaxBatch is the most requests one {"batch":[...]} invocation may hold.
const MaxBatch = 1000

// Request is one validated token request, in the shape of the hotsock
// jwt-issuer: {"claims":{...},"ttl":N,"setIat":bool,"setJti":bool}.
type Request struct {
	// TTL is the requested lifetime in seconds; 0 means not set.
	TTL    int64
	SetIat bool
	SetJti bool

	// claims is the caller's claims object, compacted, members in the
	// caller's order, without the members the request overrides (exp when
	// ttl is set, iat with setIat, jti with setJti): the issuer appends those.
	claims []byte
	// exp is the caller's exp value when it is kept (a slice of claims).
	exp []byte
	at  where
}

// RequestError is a caller's mistake: the message names the field and the
// limit.
type RequestError struct{ msg string }

func (e *RequestError) Error() string { return "invalid request: " + e.msg }

func badRequest(format string, args ...any) error {
	return &RequestError{msg: fmt.Sprintf(format, args...)}
}

// IsRequestError tells a caller's mistake from a failure of the issuer.
func IsRequestError(err error) bool {
	var re *RequestError
	return errors.As(err, &re)
}

// where is the request a field belongs to: the payload itself (item < 0)
// or batch[item]. Field names are spelt out only for error messages.
type where struct{ item int }

var single = where{item: -1}

func (w where) field(name string) string {
	if w.item < 0 {
		return name
	}
	return "batch[" + strconv.Itoa(w.item) + "]." + name
}

func (w where) object() string {
	if w.item < 0 {
		return "the request"
	}
	return "batch[" + strconv.Itoa(w.item) + "]"
}

const requestShape = `{"claims":{...},"ttl":30,"setIat":true,"setJti":true}`

// parsePayload decodes and validates an invoke payload: the single request,
// or the batch (non-nil, 1 to MaxBatch requests) when the payload is one. It
// reads the payload in one pass. Unknown fields are errors, so a misspelt
// "tll" is not silently ignored; so are fields and claims named twice, at
// any depth of the claims.
func parsePayload(payload []byte) (Request, []Request, error) {
	if !utf8.Valid(payload) {
		return Request{}, nil, badRequest("payload must be UTF-8 JSON (invalid UTF-8 at byte %d)", invalidUTF8At(payload))
	}
	// The claims are never longer than the payload: one allocation for a
	// single request, whose claims stay in it, and one reused by all the
	// items of a batch.
	p := parser{s: scanner{data: payload}, claims: make([]byte, 0, len(payload)+1)}
	if p.s.peek() != '{' {
		return Request{}, nil, badRequest("payload must be a JSON object like "+requestShape+" (%s)", jsonProblem(payload))
	}
	req, batch, err := p.request(single)
	if err == nil {
		err = p.s.end()
	}
	if err != nil {
		return Request{}, nil, explainSyntax(err)
	}
	return req, batch, nil
}

// explainSyntax turns a syntax error into the request error for it.
func explainSyntax(err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return badRequest("payload must be a JSON object like "+requestShape+" (invalid JSON at byte %d: %s)", se.off, se.msg)
	}
	return err
}

// parser reads a payload in one pass: it validates the JSON, compacts each
// request's claims, refuses names given twice, and keeps the other fields'
// values for the request to check.
type parser struct {
	s scanner
	// claims is scratch for the claims being read: ",name:value" per
	// member, reused from one batch item to the next.
	claims []byte
}

// managed are the claims a request's flags may override.
var managed = [...]string{"exp", "iat", "jti"}

// request reads one request object at the scanner: the payload's own
// (at is single; it may be a batch instead) or a batch item.
func (p *parser) request(at where) (Request, []Request, error) {
	s := &p.s
	if err := s.expect('{'); err != nil {
		return Request{}, nil, err
	}
	var (
		ttl, setIat, setJti []byte
		notObject           []byte // claims that is not an object
		hasClaims, hasBatch bool
		claimsRead          bool // an object, read into p.claims
		batch               []Request
		spans               claimSpans
	)
	if s.peek() == '}' {
		s.off++
	} else {
		for {
			raw, esc, err := s.str()
			if err != nil {
				return Request{}, nil, err
			}
			name := decodeName(raw, esc)
			if err := s.expect(':'); err != nil {
				return Request{}, nil, err
			}
			var seen bool
			switch string(name) {
			case "claims":
				seen, hasClaims = hasClaims, true
				if !seen && s.peek() == '{' {
					claimsRead = true
					spans, err = p.readClaims(at)
				} else {
					notObject, err = s.value(1)
				}
			case "ttl":
				seen = ttl != nil
				ttl, err = s.value(1)
			case "setIat":
				seen = setIat != nil
				setIat, err = s.value(1)
			case "setJti":
				seen = setJti != nil
				setJti, err = s.value(1)
			case "batch":
				if at != single {
					return Request{}, nil, badRequest("unknown field %q in %s (allowed: claims, ttl, setIat, setJti)", name, at.object())
				}
				seen, hasBatch = hasBatch, true
				if !seen {
					batch, err = p.readBatch()
				}
			default:
				allowed := "claims, ttl, setIat, setJti"
				if at == single {
					allowed += "; or batch alone"
				}
				return Request{}, nil, badRequest("unknown field %q in %s (allowed: %s)", name, at.object(), allowed)
			}
			if err != nil {
				return Request{}, nil, err
			}
			if seen {
				return Request{}, nil, badRequest("%s names the field %q more than once", at.object(), name)
			}
			switch s.peek() {
			case ',':
				s.off++
				continue
			case '}':
				s.off++
			case 0:
				return Request{}, nil, s.fail("unexpected end of JSON")
			default:
				return Request{}, nil, s.fail("expected ',' or '}'")
			}
			break
		}
	}
	if hasBatch {
		if hasClaims || ttl != nil || setIat != nil || setJti != nil {
			return Request{}, nil, badRequest("batch cannot be combined with claims, ttl, setIat or setJti at the top level: each batch item carries its own")
		}
		return Request{}, batch, nil
	}

	req := Request{at: at}
	var err error
	if ttl != nil {
		if req.TTL, err = parseTTL(ttl, at); err != nil {
			return Request{}, nil, err
		}
	}
	if setIat != nil {
		if req.SetIat, err = parseBool(setIat, at, "setIat"); err != nil {
			return Request{}, nil, err
		}
	}
	if setJti != nil {
		if req.SetJti, err = parseBool(setJti, at, "setJti"); err != nil {
			return Request{}, nil, err
		}
	}
	switch {
	case !hasClaims:
		return Request{}, nil, badRequest("%s is required and must be a JSON object", at.field("claims"))
	case !claimsRead:
		return Request{}, nil, badRequest("%s must be a JSON object, got %s", at.field("claims"), kind(notObject))
	}
	if at == single {
		req.setClaims(p.claims, spans) // p.claims is done with
	} else {
		// p.claims goes on to the next item.
		req.setClaims(append(make([]byte, 0, len(p.claims)+2), p.claims...), spans)
	}
	return req, nil, nil
}

// readBatch reads the batch array at the scanner, every item a request.
func (p *parser) readBatch() ([]Request, error) {
	s := &p.s
	if s.peek() != '[' {
		v, err := s.value(1)
		if err != nil {
			return nil, err
		}
		return nil, badRequest("batch must be an array of 1 to %d requests, got %s", MaxBatch, kind(v))
	}
	s.off++
	if s.peek() == ']' {
		s.off++
		return nil, badRequest("batch is empty: it must hold 1 to %d requests", MaxBatch)
	}
	var reqs []Request
	for i := 0; ; i++ {
		if i == MaxBatch {
			return nil, p.tooMany(i)
		}
		at := where{item: i}
		if s.peek() != '{' {
			v, err := s.value(1)
			if err != nil {
				return nil, err
			}
			return nil, badRequest("%s must be a JSON object like %s, got %s", at.object(), requestShape, kind(v))
		}
		req, _, err := p.request(at)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, req)
		switch s.peek() {
		case ',':
			s.off++
		case ']':
			s.off++
			return reqs, nil
		case 0:
			return nil, s.fail("unexpected end of JSON")
		default:
			return nil, s.fail("expected ',' or ']'")
		}
	}
}

// tooMany counts the items of a batch found to hold more than MaxBatch,
// from the n-th on, for its error.
func (p *parser) tooMany(n int) error {
	s := &p.s
	for {
		if _, err := s.value(1); err != nil {
			return err
		}
		n++
		switch s.peek() {
		case ',':
			s.off++
		case ']':
			s.off++
			return badRequest("batch holds %d requests, the limit is %d", n, MaxBatch)
		case 0:
			return s.fail("unexpected end of JSON")
		default:
			return s.fail("expected ',' or ']'")
		}
	}
}

// claimSpans locates exp, iat and jti among the members read.
type claimSpans struct {
	member   [len(managed)][2]int // ",name:value"; end 0 when absent
	expValue int                  // where exp's value starts
}

// readClaims reads the claims object at the scanner into p.claims, one
// ",name:value" per member, compacted, and returns where exp, iat and jti
// are in it. A name given twice, here or in any object inside, is refused.
func (p *parser) readClaims(at where) (spans claimSpans, err error) {
	s := &p.s
	s.off++ // '{'
	p.claims = p.claims[:0]
	if s.peek() == '}' {
		s.off++
		return spans, nil
	}
	var names nameSet
	for {
		raw, esc, err := s.str()
		if err != nil {
			return spans, err
		}
		name := decodeName(raw, esc)
		if !names.add(name) {
			return spans, duplicateError(at, &duplicate{name: name})
		}
		if err := s.expect(':'); err != nil {
			return spans, err
		}
		s.ws()
		s.spaced, s.unique = false, true
		v, err := s.value(1)
		s.unique = false
		if d, ok := err.(*duplicate); ok {
			d.path = append(d.path, "."+string(name))
			return spans, duplicateError(at, d)
		}
		if err != nil {
			return spans, err
		}
		start := len(p.claims)
		p.claims = append(p.claims, ',')
		p.claims = append(p.claims, raw...)
		p.claims = append(p.claims, ':')
		if s.spaced {
			p.claims = appendCompact(p.claims, v)
		} else {
			p.claims = append(p.claims, v...)
		}
		for k, m := range managed {
			if string(name) == m {
				spans.member[k] = [2]int{start, len(p.claims)}
				if k == 0 {
					spans.expValue = start + 1 + len(raw) + 1
				}
			}
		}
		switch s.peek() {
		case ',':
			s.off++
		case '}':
			s.off++
			return spans, nil
		case 0:
			return spans, s.fail("unexpected end of JSON")
		default:
			return spans, s.fail("expected ',' or '}'")
		}
	}
}

// setClaims makes members (",name:value" each, which it overwrites) the
// request's claims object, without the members its flags override.
func (req *Request) setClaims(members []byte, at claimSpans) {
	drop := [len(managed)]bool{req.TTL > 0, req.SetIat, req.SetJti}
	// The members to leave out, in order.
	var cuts [len(managed)][2]int
	n := 0
	for k, m := range at.member {
		if m[1] > 0 && drop[k] {
			j := n
			for ; j > 0 && cuts[j-1][0] > m[0]; j-- {
				cuts[j] = cuts[j-1]
			}
			cuts[j] = m
			n++
		}
	}
	// Close the gaps in place, left to right.
	kept, from, expShift := 0, 0, 0
	for _, c := range cuts[:n] {
		kept += copy(members[kept:], members[from:c[0]])
		if c[0] < at.expValue {
			expShift += c[1] - c[0]
		}
		from = c[1]
	}
	kept += copy(members[kept:], members[from:])
	members = members[:kept]
	// Every member starts with a comma: the first one's becomes the brace.
	if len(members) == 0 {
		members = append(members, '{')
	}
	members[0] = '{'
	req.claims = append(members, '}')
	if exp := at.member[0]; exp[1] > 0 && !drop[0] {
		start := at.expValue - expShift
		req.exp = req.claims[start : start+exp[1]-at.expValue]
	}
}

func parseTTL(raw []byte, at where) (int64, error) {
	if n, ok := smallUint(raw); ok {
		return n, nil
	}
	if string(raw) == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(raw), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, badRequest("%s must be an integer number of seconds, got %s", at.field("ttl"), kind(raw))
		}
		n = int64(f)
	}
	if n < 0 {
		return 0, badRequest("%s is %d, must not be negative", at.field("ttl"), n)
	}
	return n, nil
}

// smallUint parses up to 18 decimal digits without a sign.
func smallUint(raw []byte) (int64, bool) {
	if len(raw) == 0 || len(raw) > 18 || (raw[0] == '0' && len(raw) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range raw {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func parseBool(raw []byte, at where, name string) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}
	return false, badRequest("%s must be true or false, got %s", at.field(name), kind(raw))
}

// kind names a JSON value's type without echoing it: claim values can be
// personal data and do not belong in logs.
func kind(raw []byte) string {
	s := scanner{data: raw}
	switch s.peek() {
	case 0:
		return "nothing"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// jsonProblem explains why payload, which does not start with '{', is not
// a JSON object: another kind of value, or not JSON.
func jsonProblem(payload []byte) string {
	s := scanner{data: payload}
	_, err := s.value(0)
	if err == nil {
		if err = s.end(); err == nil {
			return "got " + kind(payload)
		}
	}
	var se *syntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %s", se.off, se.msg)
	}
	return "got " + kind(payload)
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}
