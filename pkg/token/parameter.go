package token

import (
	"context"
	"errors"
	"fmt"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/store"
)

// SigningParameter reads the signing-key parameter (Parameter Store custody).
type SigningParameter interface {
	Get(ctx context.Context) ([]byte, error)
}

// ErrNoParameter: the rotator has not written the signing-key parameter yet.
var ErrNoParameter = errors.New("no signing key yet: the signing-key parameter does not exist; the rotator writes it " +
	"at the first rotation's finishSecret and restores it at every cleanup (invoke the rotator with {\"action\":\"cleanup\"})")

// ParameterKeyLoader loads the key the signing-key parameter holds: the
// rotator keeps it equal to AWSCURRENT's key.
func ParameterKeyLoader(param SigningParameter, kms KMSSignerFunc) func(context.Context) (*Key, error) {
	return func(ctx context.Context) (*Key, error) {
		value, err := param.Get(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNoParameter
		}
		if err != nil {
			return nil, fmt.Errorf("read signing key parameter: %w", err)
		}
		rec, err := keys.ParseRecord(value)
		if err != nil {
			return nil, fmt.Errorf("read signing key parameter: %w", err)
		}
		return KeyFromRecord(rec, kms)
	}
}
