package kmscustody

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/token"
)

// Backoff of a throttled Sign: exponential from retryBase up to retryCap,
// with equal jitter (half fixed, half random) so that the Lambda instances
// throttled together do not retry together.
const (
	retryBase = 25 * time.Millisecond
	retryCap  = time.Second
	// retryReserve is left of the deadline for answering: giving up in time
	// returns a clear error instead of a Lambda timeout.
	retryReserve = 250 * time.Millisecond
	// retryBudget bounds the retries of a context without a deadline.
	retryBudget = 5 * time.Second
)

// Signer signs with one KMS key through kms:Sign: one KMS call per token
// unless KMS throttles it.
type Signer struct {
	api   store.KMS
	keyID string
	alg   keys.Algorithm
}

// token.NewKey finds MaxInFlight by type assertion: a drifted signature
// would silently sign batches one call at a time.
var _ token.RemoteSigner = (*Signer)(nil)

// NewSigner signs with the KMS key keyID (an ARN or id) for alg.
func NewSigner(api store.KMS, keyID string, alg keys.Algorithm) *Signer {
	return &Signer{api: api, keyID: keyID, alg: alg}
}

// MaxInFlight lets a batch keep this many Sign calls outstanding: with
// ~15 ms per call, 4 in flight signs a 1,000-item batch in about 4 s, within
// the function's timeout, at ~270 calls/s, under the 300/s ECC default quota.
func (s *Signer) MaxInFlight() int { return 4 }

// SignerFunc gives the signer of a KMS-held key, for token.KeyFromRecord.
func SignerFunc(api store.KMS) token.KMSSignerFunc {
	return func(keyID string, alg keys.Algorithm) token.Signer { return NewSigner(api, keyID, alg) }
}

// Sign returns the JWS signature of signingInput: KMS's DER ECDSA signature
// converted to fixed-width r‖s, or the RSA signature as is. Throttling is
// retried with jittered exponential backoff while ctx's deadline allows.
func (s *Signer) Sign(ctx context.Context, signingInput []byte) ([]byte, error) {
	_, kmsAlg, err := specFor(s.alg)
	if err != nil {
		return nil, fmt.Errorf("kms:Sign with %s: %w", s.keyID, err)
	}
	req := store.SignRequest{KeyID: s.keyID, Algorithm: kmsAlg, Message: signingInput}
	if len(signingInput) > store.MaxRawSignMessage {
		// KMS refuses a RAW message this long: send the digest. (moto
		// mishandles DIGEST, which is why RAW is the normal path.)
		h := s.alg.Hash().New()
		h.Write(signingInput)
		req.Message, req.Digest = h.Sum(nil), true
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		sig, err := s.api.Sign(ctx, req)
		if err == nil {
			if size := s.alg.SignatureSize(); size > 0 {
				return token.DERToJOSE(sig, size)
			}
			return sig, nil // RSA: PKCS #1 v1.5 bytes are the JWS signature
		}
		if !errors.Is(err, store.ErrThrottled) {
			return nil, fmt.Errorf("kms:Sign with %s: %w", s.keyID, err)
		}
		wait := backoff(attempt)
		if !canWait(ctx, start, wait) {
			return nil, fmt.Errorf("kms:Sign with %s: throttled by KMS %d times in %s, giving up before the deadline: "+
				"the account's KMS request quota for %s signing is exhausted (see Service Quotas): %w",
				s.keyID, attempt, time.Since(start).Round(time.Millisecond), s.alg, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("kms:Sign with %s: throttled, then %w", s.keyID, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is the pause after the attempt-th throttled call.
func backoff(attempt int) time.Duration {
	d := retryCap
	if attempt < 16 {
		d = min(retryCap, retryBase<<(attempt-1))
	}
	return d/2 + rand.N(d/2+1)
}

// canWait tells whether a pause of wait still leaves room for another
// attempt and the answer before ctx's deadline (or, without one, within
// retryBudget of start).
func canWait(ctx context.Context, start time.Time, wait time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok {
		return time.Until(deadline) > wait+retryReserve
	}
	return time.Since(start)+wait < retryBudget
}
