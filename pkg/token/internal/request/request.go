// Package request reads the signer's invoke payload, a request in the shape
// of the hotsock jwt-issuer, {"claims":{...},"ttl":N,"setIat":bool,
// "setJti":bool}, or {"batch":[request, ...]}, and applies its rules. It is
// the security boundary of the signer: whatever a caller sends is refused
// unless encoding/json would read it the same way, claims given twice at
// any depth are refused, and numbers are compared exactly.
package request

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// MaxBatch is the most requests one {"batch":[...]} invocation may hold.
const MaxBatch = 1000

// Request is one validated token request.
type Request struct {
	// TTL is the requested lifetime in seconds; 0 means not set. A ttl
	// beyond an int64 is math.MaxInt64, above any limit.
	TTL    int64
	SetIat bool
	SetJti bool
	// SetIss is true when the issuer adds iss (Rules.Issuer): the claims
	// have none of their own.
	SetIss bool

	// claims is the caller's claims object, compacted, members in the
	// caller's order, without the members the request overrides (exp when
	// ttl is set, iat with setIat, jti with setJti): the issuer appends those.
	claims []byte
	// exp is the caller's exp value when it is kept (a slice of claims).
	exp []byte
	at  where
}

// Claims is the caller's claims object, compacted, without exp when the
// issuer sets it, iat with SetIat, and jti with SetJti. It is empty for a
// zero Request.
func (r *Request) Claims() []byte { return r.claims }

// RequestError is a caller's mistake: the message names the field and the
// limit. Its type name is the errorType a Lambda caller sees.
type RequestError struct{ msg string }

func (e *RequestError) Error() string { return "invalid request: " + e.msg }

func badRequest(format string, args ...any) error {
	return &RequestError{msg: fmt.Sprintf(format, args...)}
}

// where is the request a field belongs to: the payload itself (item < 0)
// or batch[item]. Field names are spelt out only for error messages.
type where struct{ item int }

// topLevel is where the payload's own request is.
func topLevel() where { return where{item: -1} }

func (w where) single() bool { return w.item < 0 }

func (w where) field(name string) string {
	if w.single() {
		return name
	}
	return "batch[" + strconv.Itoa(w.item) + "]." + name
}

func (w where) object() string {
	if w.single() {
		return "the request"
	}
	return "batch[" + strconv.Itoa(w.item) + "]"
}

const requestShape = `{"claims":{...},"ttl":30,"setIat":true,"setJti":true}`

// Parse decodes and validates an invoke payload: the single request, or
// the batch (non-nil, 1 to MaxBatch requests) when the payload is one. It
// reads the payload in one pass. Unknown fields are errors, so a misspelt
// "tll" is not silently ignored; so are fields and claims named twice, at
// any depth of the claims. rules, when not nil, are the deployment's rules
// on top of these.
func Parse(payload []byte, rules *Rules) (Request, []Request, error) {
	if !utf8.Valid(payload) {
		return Request{}, nil, badRequest("payload must be UTF-8 JSON (invalid UTF-8 at byte %d)", invalidUTF8At(payload))
	}
	// The claims are never longer than the payload: one allocation for a
	// single request, whose claims stay in it, and one reused by all the
	// items of a batch.
	p := parser{s: scanner{data: payload}, claims: make([]byte, 0, len(payload)+1), rules: rules}
	if p.s.peek() != '{' {
		return Request{}, nil, badRequest("payload must be a JSON object like "+requestShape+" (%s)", jsonProblem(payload))
	}
	req, batch, err := p.request(topLevel(), 1)
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
	rules  *Rules // nil: none
}

// fields are the members of one request object as read, before they are
// checked: raw values, nil when absent.
type fields struct {
	ttl, setIat, setJti []byte
	notObject           []byte // claims, when it is not an object
	hasClaims           bool
	claimsRead          bool // claims is an object, read into parser.claims
	spans               claimSpans
	batch               []Request
	hasBatch            bool
}

// request reads one request object at the scanner, at depth: the
// payload's own (at is single; it may be a batch instead) or a batch item.
func (p *parser) request(at where, depth int) (Request, []Request, error) {
	var f fields
	if err := p.readFields(at, depth, &f); err != nil {
		return Request{}, nil, err
	}
	if f.hasBatch {
		if f.hasClaims || f.ttl != nil || f.setIat != nil || f.setJti != nil {
			return Request{}, nil, badRequest("batch cannot be combined with claims, ttl, setIat or setJti at the top level: each batch item carries its own")
		}
		return Request{}, f.batch, nil
	}
	req, err := p.build(at, &f)
	return req, nil, err
}

// readFields reads the members of the request object at the scanner, at
// depth, into f.
func (p *parser) readFields(at where, depth int, f *fields) error {
	s := &p.s
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.off++
		return nil
	}
	for {
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		name := decodeName(raw, esc)
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := p.field(at, depth, name, f); err != nil {
			return err
		}
		if more, err := s.next('}'); err != nil || !more {
			return err
		}
	}
}

// field reads the value of the member name of a request object at depth
// into f.
func (p *parser) field(at where, depth int, name []byte, f *fields) error {
	s := &p.s
	var seen bool
	var err error
	switch string(name) {
	case "claims":
		seen, f.hasClaims = f.hasClaims, true
		if !seen && s.peek() == '{' {
			f.claimsRead = true
			start := s.off
			if f.spans, err = p.readClaims(at, depth+1); err == nil {
				err = p.rules.claimsSize(at, s.off-start)
			}
		} else {
			f.notObject, err = s.value(depth)
		}
	case "ttl":
		seen = f.ttl != nil
		f.ttl, err = s.value(depth)
	case "setIat":
		seen = f.setIat != nil
		f.setIat, err = s.value(depth)
	case "setJti":
		seen = f.setJti != nil
		f.setJti, err = s.value(depth)
	case "batch":
		if !at.single() {
			return unknownField(at, name)
		}
		seen, f.hasBatch = f.hasBatch, true
		if !seen {
			f.batch, err = p.readBatch(depth)
		}
	default:
		return unknownField(at, name)
	}
	if err == nil && seen {
		err = badRequest("%s names the field %q more than once", at.object(), shorten(name))
	}
	return err
}

func unknownField(at where, name []byte) error {
	allowed := "claims, ttl, setIat, setJti"
	if at.single() {
		allowed += "; or batch alone"
	}
	return badRequest("unknown field %q in %s (allowed: %s)", shorten(name), at.object(), allowed)
}

// build checks the fields of the request at and makes the request.
func (p *parser) build(at where, f *fields) (Request, error) {
	req := Request{at: at}
	var err error
	if req.TTL, err = parseTTL(f.ttl, at); err != nil {
		return Request{}, err
	}
	if req.SetIat, err = parseFlag(f.setIat, at, "setIat"); err != nil {
		return Request{}, err
	}
	if req.SetJti, err = parseFlag(f.setJti, at, "setJti"); err != nil {
		return Request{}, err
	}
	switch {
	case !f.hasClaims:
		return Request{}, badRequest("%s is required and must be a JSON object", at.field("claims"))
	case !f.claimsRead:
		return Request{}, badRequest("%s must be a JSON object, got %s", at.field("claims"), kind(f.notObject))
	}
	// The rules read the members before setClaims moves them.
	if err := p.rules.apply(at, p.claims, &f.spans, &req); err != nil {
		return Request{}, err
	}
	if at.single() {
		req.setClaims(p.claims, f.spans) // p.claims is done with
	} else {
		// p.claims goes on to the next item.
		req.setClaims(append(make([]byte, 0, len(p.claims)+2), p.claims...), f.spans)
	}
	return req, nil
}

// readBatch reads the batch array, a member of the payload object at
// depth, every item a request.
func (p *parser) readBatch(depth int) ([]Request, error) {
	s := &p.s
	limit := p.rules.maxBatch()
	if s.peek() != '[' {
		v, err := s.value(depth)
		if err != nil {
			return nil, err
		}
		return nil, badRequest("batch must be an array of 1 to %d requests, got %s", limit, kind(v))
	}
	s.off++
	if s.peek() == ']' {
		s.off++
		return nil, badRequest("batch is empty: it must hold 1 to %d requests", limit)
	}
	var reqs []Request
	for i := 0; ; i++ {
		if i == limit {
			return nil, p.tooMany(i, depth+1)
		}
		req, err := p.item(where{item: i}, depth+1)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, req)
		more, err := s.next(']')
		if err != nil {
			return nil, err
		}
		if !more {
			return reqs, nil
		}
	}
}

// item reads the batch item at, an element of the batch array at depth.
func (p *parser) item(at where, depth int) (Request, error) {
	s := &p.s
	if s.peek() != '{' {
		v, err := s.value(depth)
		if err != nil {
			return Request{}, err
		}
		return Request{}, badRequest("%s must be a JSON object like %s, got %s", at.object(), requestShape, kind(v))
	}
	req, _, err := p.request(at, depth+1)
	return req, err
}

// tooMany counts the items of a batch (an array at depth) found to hold
// more than its limit, from the n-th on, for its error.
func (p *parser) tooMany(n, depth int) error {
	s := &p.s
	for {
		if _, err := s.value(depth); err != nil {
			return err
		}
		n++
		if more, err := s.next(']'); err != nil || !more {
			if err == nil {
				err = p.rules.batchTooLarge(n)
			}
			return err
		}
	}
}

// parseTTL reads a ttl: an integer written as one, since encoding/json
// refuses 30.0 and 3e1 for an integer too, and a ttl float64 rounds to an
// integer is not one (3600.0000000000001, or 1e-400, which would be 0:
// not set, the longest lifetime). null and 0 mean not set; a negative ttl
// is refused.
func parseTTL(raw []byte, at where) (int64, error) {
	if n, ok := smallUint(raw); ok {
		return n, nil
	}
	if raw == nil || string(raw) == "null" {
		return 0, nil
	}
	if !isNumber(raw) {
		return 0, badRequest("%s must be an integer number of seconds, got %s", at.field("ttl"), kind(raw))
	}
	for _, c := range raw {
		switch c {
		case '.':
			return 0, badRequest("%s must be an integer number of seconds, got a number with a fraction (write the seconds as digits alone, like 30)", at.field("ttl"))
		case 'e', 'E':
			return 0, badRequest("%s must be an integer number of seconds, got a number with an exponent (write the seconds as digits alone, like 30)", at.field("ttl"))
		}
	}
	n := parseNumber(raw)
	switch {
	case n.neg && (n.huge || n.integer != 0):
		return 0, badRequest("%s is %s, must not be negative", at.field("ttl"), shortNumber(raw))
	case n.neg: // -0
		return 0, nil
	case n.huge:
		return math.MaxInt64, nil // above any limit
	}
	return n.integer, nil
}

// smallUint parses up to 18 decimal digits without a sign: the ttl as it
// is almost always written.
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

func parseFlag(raw []byte, at where, name string) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false", "null", "":
		return false, nil
	}
	return false, badRequest("%s must be true or false, got %s", at.field(name), kind(raw))
}

// isNumber tells a number from the other kinds of a validated value.
func isNumber(raw []byte) bool { return len(raw) > 0 && (raw[0] == '-' || isDigit(raw[0])) }

// shortNumber is a number as written, for an error message; a long one is
// described rather than quoted.
func shortNumber(raw []byte) string {
	if len(raw) > 32 {
		return fmt.Sprintf("a number %d characters long", len(raw))
	}
	return string(raw)
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
