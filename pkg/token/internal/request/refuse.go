package request

import "fmt"

// Refuse is a RequestError for a request the issuer turns down for a
// reason of its own, beyond Parse's rules: a batch that cannot be signed
// before the invocation's deadline.
func Refuse(format string, args ...any) error {
	return &RequestError{msg: fmt.Sprintf(format, args...)}
}
