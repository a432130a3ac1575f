package store

import "context"

// MaxParameterValue is the size limit of a standard-tier parameter's value
// (4 KB). moto does not enforce it; the adapters do, so that a value AWS
// would refuse is refused in tests too.
const MaxParameterValue = 4096

// Parameter is one SecureString parameter in Parameter Store: under
// Parameter Store custody, the copy of the signing key that signers read.
type Parameter interface {
	// Get returns the decrypted value, or ErrNotFound.
	Get(ctx context.Context) ([]byte, error)
	// Put writes value as a SecureString, replacing what is there. A value
	// over MaxParameterValue bytes is refused before any call.
	Put(ctx context.Context, value []byte) error
}
