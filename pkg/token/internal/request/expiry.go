package request

import "math"

// Expiry is the exp a token gets: At when Set, else the caller's own
// claims.exp, kept where the caller put it.
type Expiry struct {
	At  int64
	Set bool
}

// Expiry applies the rules of exp at time now (Unix seconds) for tokens
// living at most limit seconds (T, MAX_TOKEN_TTL_SECONDS): a ttl above 0
// sets exp to now + ttl and must not exceed T; otherwise the caller's
// claims.exp is kept, and must be a number no later than now + T, compared
// exactly; otherwise exp is now + T.
func (r *Request) Expiry(now, limit int64) (Expiry, error) {
	switch {
	case r.TTL == math.MaxInt64: // or beyond: parseTTL saturates
		return Expiry{}, badRequest("%s is %d or more, the limit is %d seconds (MAX_TOKEN_TTL_SECONDS)", r.at.field("ttl"), r.TTL, limit)
	case r.TTL > limit:
		return Expiry{}, badRequest("%s is %d, the limit is %d seconds (MAX_TOKEN_TTL_SECONDS)", r.at.field("ttl"), r.TTL, limit)
	case r.TTL > 0:
		return Expiry{At: now + r.TTL, Set: true}, nil
	case r.exp != nil:
		return Expiry{}, checkExp(r.exp, now, limit, r.at.field("claims.exp"))
	}
	return Expiry{At: now + limit, Set: true}, nil
}

// checkExp checks the caller's exp (raw, the field named field) against
// now + limit. A fraction above the bound is refused: a verifier reading
// exp as a float64 would round it, one reading an integer would truncate
// it, but the token would say it lives longer than T.
func checkExp(raw []byte, now, limit int64, field string) error {
	if !isNumber(raw) {
		return badRequest("%s must be a number of seconds since the epoch, got %s", field, kind(raw))
	}
	n := parseNumber(raw)
	if !n.above(now + limit) {
		return nil
	}
	switch {
	case n.huge:
		return badRequest("%s is beyond %d seconds since the epoch, the limit is %d seconds from now (MAX_TOKEN_TTL_SECONDS)", field, int64(math.MaxInt64), limit)
	case n.fraction:
		return badRequest("%s is more than %d seconds from now, the limit is %d seconds (MAX_TOKEN_TTL_SECONDS)", field, n.integer-now, limit)
	}
	return badRequest("%s is %d seconds from now, the limit is %d seconds (MAX_TOKEN_TTL_SECONDS)", field, n.integer-now, limit)
}
