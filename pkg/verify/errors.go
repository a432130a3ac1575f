package verify

import (
	"errors"
	"fmt"
)

// Reason says why a token was refused. Each reason is an error of its own, so
// that errors.Is(err, verify.ReasonExpired) tells a refusal apart without a
// type assertion.
type Reason int

const (
	// ReasonMalformed: not a compact JWS with a JSON header and JSON claims,
	// a registered claim of the wrong type, no kid or no exp, a header this
	// verifier does not understand (crit), or a name given twice.
	ReasonMalformed Reason = iota + 1
	// ReasonTooLarge: the token is longer than Config.MaxTokenBytes.
	ReasonTooLarge
	// ReasonWrongAlgorithm: alg is not allowed, or differs from the alg of
	// the key its kid names.
	ReasonWrongAlgorithm
	// ReasonUnknownKid: the kid is not in the key set, even after a refetch
	// (or the refetch was held back by the rate limit).
	ReasonUnknownKid
	// ReasonBadSignature: the signature does not verify with the key.
	ReasonBadSignature
	// ReasonExpired: exp is past, beyond the clock skew.
	ReasonExpired
	// ReasonNotYetValid: nbf is ahead, beyond the clock skew.
	ReasonNotYetValid
	// ReasonWrongIssuer: iss is missing or is not the configured issuer.
	ReasonWrongIssuer
	// ReasonWrongAudience: aud is missing or names none of the configured
	// audiences.
	ReasonWrongAudience
	// ReasonKeySetUnavailable: there is no key set to check the token
	// against: it could not be fetched, and no earlier copy may still be
	// used. The token itself may be fine.
	ReasonKeySetUnavailable
)

var reasonNames = [...]string{
	ReasonMalformed:         "malformed",
	ReasonTooLarge:          "too_large",
	ReasonWrongAlgorithm:    "wrong_algorithm",
	ReasonUnknownKid:        "unknown_kid",
	ReasonBadSignature:      "bad_signature",
	ReasonExpired:           "expired",
	ReasonNotYetValid:       "not_yet_valid",
	ReasonWrongIssuer:       "wrong_issuer",
	ReasonWrongAudience:     "wrong_audience",
	ReasonKeySetUnavailable: "key_set_unavailable",
}

// String is the reason's name for logs and metrics, such as "unknown_kid".
func (r Reason) String() string {
	if r > 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Error makes a Reason usable as the target of errors.Is.
func (r Reason) Error() string { return "token refused: " + r.String() }

// Error is every refusal Verify returns.
type Error struct {
	Reason Reason
	// Kid is the token's kid, when the refusal came after it was read.
	Kid string
	// Detail says what exactly was wrong, without echoing claim values.
	Detail string
	// Err is the underlying cause, if any (a failed fetch, for instance).
	Err error
}

func (e *Error) Error() string {
	msg := "token refused (" + e.Reason.String() + ")"
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is this error's Reason.
func (e *Error) Is(target error) bool {
	r, ok := target.(Reason)
	return ok && r == e.Reason
}

func refuse(r Reason, detail string) *Error { return &Error{Reason: r, Detail: detail} }

// ReasonOf returns the Reason of a refusal, or 0 if err is not one.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return 0
}
