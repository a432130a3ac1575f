package token

import (
	"errors"

	"jwks-issuer/pkg/token/internal/request"
)

// MaxBatch is the most requests one {"batch":[...]} invocation may hold.
const MaxBatch = request.MaxBatch

// The failures the signer returns. aws-lambda-go names a function error's
// errorType after the Go type of the error returned, so each class of
// failure is its own type, and a caller can tell "fix your request" from
// "retry later" by errorType alone. README.md's error table lists them.
type (
	// RequestError is a caller's mistake: the message names the field and
	// the limit. The same request fails the same way: do not retry it.
	RequestError = request.RequestError

	// KeyUnavailableError: the signer has no key it may sign with now. The
	// secret holds no key yet (ErrNoKey: run its first rotation), or the
	// key could not be read and the cached one is older than
	// KEY_CACHE_SECONDS, or the key read is unusable. Retry later, with
	// backoff; an operator may have to act.
	KeyUnavailableError struct{ err error }

	// SigningError: a signature could not be made (KMS refused or
	// throttled Sign, the invocation's deadline passed during a batch, no
	// randomness for a jti). Retry with backoff.
	SigningError struct{ err error }
)

func (e *KeyUnavailableError) Error() string { return "signing key unavailable: " + e.err.Error() }
func (e *KeyUnavailableError) Unwrap() error { return e.err }

func (e *SigningError) Error() string { return "signing failed: " + e.err.Error() }
func (e *SigningError) Unwrap() error { return e.err }

// IsRequestError tells a caller's mistake from a failure of the issuer.
func IsRequestError(err error) bool {
	var re *RequestError
	return errors.As(err, &re)
}
