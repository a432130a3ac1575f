package verify

import (
	"bytes"
	"encoding/base64"
	"math"
	"strings"
	"time"
)

// b64 decodes JWS segments: base64url without padding, and strict, so that
// each token has one encoding only.
var b64 = base64.RawURLEncoding.Strict()

// Token is a verified token: its header fields, its registered claims, and
// every claim as raw JSON.
type Token struct {
	// Alg and Kid are the header's; Typ is empty when the header has none.
	Alg, Kid, Typ string
	Issuer        string
	Subject       string
	Audience      []string
	Expiry        time.Time
	NotBefore     time.Time // zero when the token has no nbf
	IssuedAt      time.Time // zero when the token has no iat
	ID            string    // jti

	payload []byte
	claims  []member
}

// Payload is the token's claims set, the JSON text the signature covers.
// The caller must not modify it.
func (t *Token) Payload() []byte { return t.payload }

// Claim returns the raw JSON value of the claim, as the token carries it.
func (t *Token) Claim(name string) ([]byte, bool) {
	for _, m := range t.claims {
		if string(m.name) == name {
			return m.value, true
		}
	}
	return nil, false
}

// StringClaim returns the value of a claim that is a JSON string.
func (t *Token) StringClaim(name string) (string, bool) {
	v, ok := t.Claim(name)
	if !ok {
		return "", false
	}
	s, ok := decodeString(v)
	return string(s), ok
}

// ClaimNames lists the token's claims in order.
func (t *Token) ClaimNames() []string {
	out := make([]string, len(t.claims))
	for i, m := range t.claims {
		out[i] = string(m.name)
	}
	return out
}

// b64Alphabet marks the bytes of the base64url alphabet.
var b64Alphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// compact is a token split into its parts, before any key is involved.
type compact struct {
	input   []byte // header.payload, what the signature covers
	payload []byte // base64url
	sig     []byte // base64url
	scratch []byte // room to decode payload and signature into
	alg     *algorithm
	kid     []byte
	typ     []byte
}

// split checks the token's form and reads its header. It refuses, before
// any key lookup or fetch: a token over the size limit, anything but three
// base64url segments, a header that is not a JSON object of the right
// types, crit, and an alg that is not an asymmetric signature.
func split(token string, maxBytes int) (compact, *Error) {
	var c compact
	d1, d2, e := shape(token, maxBytes)
	if e != nil {
		return c, e
	}
	hdr, e := c.decodeHeader(token, d1, d2)
	if e != nil {
		return c, e
	}
	var h header
	if e := h.read(hdr); e != nil {
		return c, e
	}
	c.kid, c.typ = h.kid, h.typ
	if h.alg == nil {
		return c, refuse(ReasonMalformed, "the header has no alg")
	}
	if c.alg = lookupAlg(h.alg); c.alg == nil {
		return c, refuse(ReasonWrongAlgorithm, "alg "+quote(h.alg)+" is not an asymmetric signature algorithm this verifier accepts")
	}
	if len(c.kid) == 0 {
		return c, refuse(ReasonMalformed, "the header has no kid")
	}
	return c, nil
}

// shape checks the outline of a compact JWS, without decoding anything: at
// most maxBytes, three non-empty base64url segments (the signature may be
// empty, for alg none to be refused by name). It returns the positions of
// the two dots.
func shape(token string, maxBytes int) (d1, d2 int, e *Error) {
	if len(token) > maxBytes {
		return 0, 0, refuse(ReasonTooLarge, "the token is over the size limit")
	}
	d1 = strings.IndexByte(token, '.')
	if d1 < 0 {
		return 0, 0, refuse(ReasonMalformed, "not a compact JWS: no '.'")
	}
	d2 = d1 + 1 + strings.IndexByte(token[d1+1:], '.')
	if d2 == d1 || strings.IndexByte(token[d2+1:], '.') >= 0 {
		return 0, 0, refuse(ReasonMalformed, "not a compact JWS: it must have exactly three parts")
	}
	if !base64urlBut(token, d1, d2) {
		return 0, 0, refuse(ReasonMalformed, "a character outside base64url")
	}
	if d1 == 0 || d2 == d1+1 {
		return 0, 0, refuse(ReasonMalformed, "empty header or payload")
	}
	return d1, d2, nil
}

// base64urlBut reports whether every byte of token but the two dots at d1
// and d2 is of the base64url alphabet. Checked here, a bad payload or
// signature is refused before any key lookup, and so are the '\r' and '\n'
// the decoder would skip, which would give a token a second encoding.
func base64urlBut(token string, d1, d2 int) bool {
	for i := 0; i < len(token); i++ {
		if !b64Alphabet[token[i]] && i != d1 && i != d2 {
			return false
		}
	}
	return true
}

// decodeHeader lays c out over one allocation: a copy of token, then room
// for the decoded header, payload and signature. It points c at the signed
// input and the encoded payload and signature, and returns the decoded
// header.
func (c *compact) decodeHeader(token string, d1, d2 int) ([]byte, *Error) {
	hLen := b64.DecodedLen(d1)
	pLen := b64.DecodedLen(d2 - d1 - 1)
	sLen := b64.DecodedLen(len(token) - d2 - 1)
	buf := make([]byte, len(token)+hLen+pLen+sLen)
	copy(buf, token)
	c.input = buf[:d2]
	c.payload = buf[d1+1 : d2]
	c.sig = buf[d2+1 : len(token)]
	hdr := buf[len(token) : len(token)+hLen]
	c.scratch = buf[len(token)+hLen:]
	n, err := b64.Decode(hdr, buf[:d1])
	if err != nil {
		return nil, refuse(ReasonMalformed, "the header is not base64url")
	}
	return hdr[:n], nil
}

// header is what split reads of a token's header: the raw decoded values
// of alg, kid and typ, nil when absent.
type header struct{ alg, kid, typ []byte }

// read parses the header and reads its members in order, so that the first
// wrong one names the refusal.
func (h *header) read(data []byte) *Error {
	var arr [8]member
	members, err := parseObject(data, arr[:0])
	if err != nil {
		return refuse(ReasonMalformed, "the header: "+err.Error())
	}
	for _, m := range members {
		if e := h.member(m); e != nil {
			return e
		}
	}
	return nil
}

// member reads one member of the header. alg, kid and typ must be strings.
// crit is refused: no extension is understood here, so a token that says
// one must be understood (b64, for instance) cannot be verified. Every
// other member is ignored, jku, x5u, jwk and x5c among them: keys come from
// the configured key set only.
func (h *header) member(m member) *Error {
	var dst *[]byte
	switch string(m.name) {
	case "alg":
		dst = &h.alg
	case "kid":
		dst = &h.kid
	case "typ":
		dst = &h.typ
	case "crit":
		return refuse(ReasonMalformed, "the header has crit: this verifier implements no extension")
	default:
		return nil
	}
	s, ok := decodeString(m.value)
	if !ok {
		return refuse(ReasonMalformed, "the header's "+string(m.name)+" is not a string")
	}
	*dst = s
	return nil
}

// claims decodes and checks the claims of a token whose signature has been
// verified. Every registered claim is read, and its type checked, before
// any is compared: a malformed claim is refused as malformed, whatever
// else is wrong.
func (s *settings) claims(c *compact, t *Token, now time.Time) *Error {
	n, err := b64.Decode(c.scratch, c.payload)
	if err != nil {
		return refuse(ReasonMalformed, "the payload is not base64url")
	}
	t.payload = c.scratch[:n:n]
	t.claims, err = parseObject(t.payload, make([]member, 0, 12))
	if err != nil {
		return refuse(ReasonMalformed, "the claims: "+err.Error())
	}
	var r registered
	for _, m := range t.claims {
		if e := r.member(m, t); e != nil {
			return e
		}
	}
	if e := s.checkTimes(&r, now); e != nil {
		return e
	}
	if e := s.issuer(r.iss, t); e != nil {
		return e
	}
	return s.audience(r.aud, t)
}

// registered holds the registered claims that are checked once all are
// read; sub, jti and the times go into the Token as they are read.
type registered struct {
	iss, aud       []byte // nil when absent; aud is raw JSON
	exp, nbf       float64
	hasExp, hasNbf bool
}

// member reads one claim, if it is a registered one.
func (r *registered) member(m member, t *Token) *Error {
	switch string(m.name) {
	case "iss", "sub", "jti":
		return r.stringClaim(m, t)
	case "aud":
		r.aud = m.value // a string or an array: audience reads it
	case "exp", "nbf", "iat":
		return r.dateClaim(m, t)
	}
	return nil
}

// stringClaim reads iss, sub or jti, which must be a string.
func (r *registered) stringClaim(m member, t *Token) *Error {
	v, ok := decodeString(m.value)
	if !ok {
		return refuse(ReasonMalformed, "claim "+string(m.name)+" is not a string")
	}
	switch string(m.name) {
	case "iss":
		r.iss = v
	case "sub":
		t.Subject = string(v)
	case "jti":
		t.ID = string(v)
	}
	return nil
}

// dateClaim reads exp, nbf or iat, which must be a NumericDate.
func (r *registered) dateClaim(m member, t *Token) *Error {
	f, ok := parseNumericDate(m.value)
	if !ok {
		return refuse(ReasonMalformed, "claim "+string(m.name)+" is not a number of seconds")
	}
	switch string(m.name) {
	case "exp":
		r.exp, r.hasExp = f, true
		t.Expiry = numericTime(f)
	case "nbf":
		r.nbf, r.hasNbf = f, true
		t.NotBefore = numericTime(f)
	case "iat":
		t.IssuedAt = numericTime(f)
	}
	return nil
}

// checkTimes requires exp, and now before it and not before nbf, each
// within the clock skew. The times are compared as float64 seconds, as the
// claims carry them, fractions included.
func (s *settings) checkTimes(r *registered, now time.Time) *Error {
	if !r.hasExp {
		return refuse(ReasonMalformed, "the token has no exp")
	}
	secs := float64(now.UnixNano()) / 1e9
	skew := s.ClockSkew.Seconds()
	if secs >= r.exp+skew {
		return refuse(ReasonExpired, "exp is "+ago(secs-r.exp)+" ago")
	}
	if r.hasNbf && secs < r.nbf-skew {
		return refuse(ReasonNotYetValid, "nbf is "+ago(r.nbf-secs)+" ahead")
	}
	return nil
}

// issuer sets t.Issuer from iss (nil when absent) and, when an issuer is
// configured, requires iss to be it. The configured string is reused when
// they are equal, to spare the warm path an allocation.
func (s *settings) issuer(iss []byte, t *Token) *Error {
	if iss != nil {
		if s.Issuer != "" && string(iss) == s.Issuer {
			t.Issuer = s.Issuer
		} else {
			t.Issuer = string(iss)
		}
	}
	if s.Issuer == "" || t.Issuer == s.Issuer {
		return nil
	}
	if iss == nil {
		return refuse(ReasonWrongIssuer, "the token has no iss")
	}
	return refuse(ReasonWrongIssuer, "iss is not the configured issuer")
}

// audience reads aud, a string or an array of strings, and requires one of
// the configured audiences in it.
func (s *settings) audience(raw []byte, t *Token) *Error {
	if raw == nil {
		return refuse(ReasonWrongAudience, "the token has no aud")
	}
	match := false
	add := func(v []byte) {
		if _, ok := s.audiences[string(v)]; ok {
			match = true
		}
		t.Audience = append(t.Audience, string(v))
	}
	if v, ok := decodeString(raw); ok {
		t.Audience = make([]string, 0, 1)
		add(v)
	} else if raw[0] == '[' {
		var ok bool
		if ok = forEachString(raw, add); !ok {
			return refuse(ReasonMalformed, "claim aud is neither a string nor an array of strings")
		}
	} else {
		return refuse(ReasonMalformed, "claim aud is neither a string nor an array of strings")
	}
	if !match {
		return refuse(ReasonWrongAudience, "aud names none of the configured audiences")
	}
	return nil
}

// forEachString calls fn with each element of raw, a checked JSON array,
// and reports false if one is not a string.
func forEachString(raw []byte, fn func([]byte)) bool {
	sc := scanner{data: raw, pos: 1}
	for {
		sc.skipSpace()
		if sc.pos < len(raw) && raw[sc.pos] == ']' {
			return true
		}
		if sc.pos >= len(raw) || raw[sc.pos] != '"' {
			return false
		}
		start := sc.pos
		if _, _, err := sc.str(); err != nil {
			return false
		}
		v, _ := decodeString(raw[start:sc.pos])
		fn(v)
		sc.skipSpace()
		if sc.pos < len(raw) && raw[sc.pos] == ',' {
			sc.pos++
		}
	}
}

// StringsClaim returns the elements of a claim that is an array of strings.
func (t *Token) StringsClaim(name string) ([]string, bool) {
	v, ok := t.Claim(name)
	if !ok || len(v) == 0 || v[0] != '[' {
		return nil, false
	}
	out := []string{}
	if !forEachString(v, func(b []byte) { out = append(out, string(b)) }) {
		return nil, false
	}
	return out, true
}

// numericTime converts NumericDate seconds to a time, clamped to years 0
// to 9999.
func numericTime(f float64) time.Time {
	const lo, hi = -62135596800, 253402300799
	f = math.Max(lo, math.Min(hi, f))
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

func ago(secs float64) string {
	return time.Duration(secs * float64(time.Second)).Round(time.Second).String()
}

func quote(b []byte) string {
	if len(b) > 32 {
		b = append(bytes.Clone(b[:32]), "..."...)
	}
	return `"` + strings.ToValidUTF8(string(b), "?") + `"`
}
