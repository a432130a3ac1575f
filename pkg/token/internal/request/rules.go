package request

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Rules are a deployment's rules on requests, on top of those of the
// request format itself. Parse applies them to the single request and to
// every item of a batch; a nil *Rules applies none.
type Rules struct {
	// MaxClaimsBytes bounds the claims object of a request, measured as
	// its bytes in the payload, from its '{' to its '}', whitespace
	// included (MAX_CLAIMS_BYTES); 0 or less: no bound.
	MaxClaimsBytes int
	// MaxBatchKMS, from 1 to MaxBatch, bounds the requests a batch may
	// hold below MaxBatch, when every token is a KMS Sign call
	// (MAX_BATCH_KMS); 0: MaxBatch.
	MaxBatchKMS int
	// Issuer, when set, is every token's iss (ISSUER_URL): a claims.iss
	// must be the same string; without one, the issuer adds it.
	Issuer string
	// Audiences, when set, are the only audiences claims.aud may name
	// (ALLOWED_AUDIENCES), and aud is required: a string, or an array of
	// one or more strings.
	Audiences []string
}

// claimsSize checks the size of the claims object of the request at, n
// bytes in the payload.
func (r *Rules) claimsSize(at where, n int) error {
	if r == nil || r.MaxClaimsBytes <= 0 || n <= r.MaxClaimsBytes {
		return nil
	}
	return badRequest("%s is %d bytes, the limit is %d (MAX_CLAIMS_BYTES)", at.field("claims"), n, r.MaxClaimsBytes)
}

// maxBatch is the most requests a batch may hold.
func (r *Rules) maxBatch() int {
	if r == nil || r.MaxBatchKMS < 1 || r.MaxBatchKMS > MaxBatch {
		return MaxBatch
	}
	return r.MaxBatchKMS
}

// batchTooLarge is the error for a batch of n requests, above maxBatch.
func (r *Rules) batchTooLarge(n int) error {
	if limit := r.maxBatch(); limit < MaxBatch {
		return badRequest("batch holds %d requests, the limit is %d (MAX_BATCH_KMS): with keys in KMS, every token is a kms:Sign call", n, limit)
	}
	return badRequest("batch holds %d requests, the limit is %d", n, MaxBatch)
}

// apply checks iss and aud in the claims of the request at, members as
// read (",name:value" each, located by spans), and sets req.SetIss when the
// issuer adds iss.
func (r *Rules) apply(at where, members []byte, spans *claimSpans, req *Request) error {
	if r == nil {
		return nil
	}
	if r.Issuer != "" {
		if !spans.has(issClaim) {
			req.SetIss = true
		} else if err := r.checkIssuer(at, spans.valueOf(members, issClaim)); err != nil {
			return err
		}
	}
	if len(r.Audiences) > 0 {
		if !spans.has(audClaim) {
			return badRequest("%s is required (allowed: %s; ALLOWED_AUDIENCES)", at.field("claims.aud"), r.allowed())
		}
		return r.checkAudience(at, spans.valueOf(members, audClaim))
	}
	return nil
}

// checkIssuer checks the caller's iss, v: the issuer's own, as a JSON
// string however it is escaped. The value is not echoed: it is the
// caller's.
func (r *Rules) checkIssuer(at where, v []byte) error {
	if s, ok := stringValue(v); ok && string(s) == r.Issuer {
		return nil
	}
	got := "a different string"
	if v[0] != '"' {
		got = kind(v)
	}
	return badRequest("%s must be %q (ISSUER_URL) or be left out, got %s", at.field("claims.iss"), r.Issuer, got)
}

// checkAudience checks the caller's aud, v: an allowed audience, or an
// array of one or more of them.
func (r *Rules) checkAudience(at where, v []byte) error {
	field := at.field("claims.aud")
	switch v[0] {
	case '"':
		if s, _ := stringValue(v); !r.allows(s) {
			return badRequest("%s is not an allowed audience (allowed: %s; ALLOWED_AUDIENCES)", field, r.allowed())
		}
		return nil
	case '[':
	default:
		return badRequest("%s must be a string or an array of strings, got %s", field, kind(v))
	}
	s := scanner{data: v, off: 1}
	if s.peek() == ']' {
		return badRequest("%s is an empty array, it must name at least one audience (allowed: %s; ALLOWED_AUDIENCES)", field, r.allowed())
	}
	for i := 0; ; i++ {
		item, err := s.value(0)
		if err != nil {
			return err // cannot happen: the value was validated
		}
		str, ok := stringValue(item)
		switch {
		case !ok:
			return badRequest("%s[%d] must be a string, got %s", field, i, kind(item))
		case !r.allows(str):
			return badRequest("%s[%d] is not an allowed audience (allowed: %s; ALLOWED_AUDIENCES)", field, i, r.allowed())
		}
		if more, err := s.next(']'); err != nil || !more {
			return err
		}
	}
}

// allows tells whether aud is on the list.
func (r *Rules) allows(aud []byte) bool {
	for _, a := range r.Audiences {
		if a == string(aud) {
			return true
		}
	}
	return false
}

// maxListed bounds how much of the allowed audiences an error spells out.
const maxListed = 200

// allowed lists the allowed audiences for an error message, the first of
// them when the list is long.
func (r *Rules) allowed() string {
	var b strings.Builder
	for i, a := range r.Audiences {
		a = shorten([]byte(a))
		if i > 0 && b.Len()+len(a) > maxListed {
			fmt.Fprintf(&b, ", ... (%d in all)", len(r.Audiences))
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a)
	}
	return b.String()
}

// stringValue is the string the validated JSON value v holds, unescaped,
// and whether it is a string.
func stringValue(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	return decodeName(v, bytes.IndexByte(v, '\\') >= 0), true
}

// maxEcho is the most bytes of a name of the caller's an error message
// repeats.
const maxEcho = 64

// shorten is a name the caller sent (a field or a claim), as an error
// message repeats it: cut to maxEcho bytes, at a character boundary, and
// marked "..." when cut. Every name an error echoes goes through it.
func shorten(name []byte) string {
	if len(name) <= maxEcho {
		return string(name)
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return string(name[:cut]) + "..."
}
