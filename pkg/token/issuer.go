// Package token validates token requests and assembles signed JWTs.
package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"jwks-issuer/pkg/token/internal/request"
)

// Issuer turns requests into signed tokens.
type Issuer struct {
	keys interface {
		Key(context.Context) (*Key, error)
	}
	maxTTL time.Duration
	now    func() time.Time
	random io.Reader // for jti; nil: crypto/rand
	rules  request.Rules
	// iss is the issuer as a JSON string, when there is one.
	iss []byte
	// added bounds what appendClaims adds to a request's claims.
	added int
	// costs is the batch signing cost model (cost.go); memoryMB the
	// function's memory size, which scales its defaults.
	costs    costs
	memoryMB int
	// maxWorkers bounds a local key's batch workers; 0: GOMAXPROCS.
	maxWorkers int
}

// DefaultMaxClaimsBytes is the largest claims object an Issuer accepts
// unless WithMaxClaimsBytes says otherwise (MAX_CLAIMS_BYTES' default).
const DefaultMaxClaimsBytes = 16384

// An Option sets one of an Issuer's rules.
type Option func(*Issuer)

// WithIssuer makes iss (ISSUER_URL) every token's iss: the issuer adds it,
// after the caller's claims, and a request whose claims.iss is another
// value is refused. "" means no issuer: iss is the caller's.
func WithIssuer(iss string) Option {
	return func(i *Issuer) { i.rules.Issuer = iss }
}

// WithAllowedAudiences makes aud required, and the audiences it names (a
// string, or an array of strings) ones of allowed (ALLOWED_AUDIENCES). An
// empty list allows any aud, or none.
func WithAllowedAudiences(allowed []string) Option {
	return func(i *Issuer) { i.rules.Audiences = allowed }
}

// WithMaxClaimsBytes bounds a request's claims object at n bytes as written
// in the payload (MAX_CLAIMS_BYTES); 0 or less: no bound.
func WithMaxClaimsBytes(n int) Option {
	return func(i *Issuer) { i.rules.MaxClaimsBytes = n }
}

// WithKMSBatchLimit bounds a batch at n requests (MAX_BATCH_KMS), from 1 to
// MaxBatch, for a signer whose keys are in KMS: every token of a batch is
// a kms:Sign call, and the account's Sign quota is shared, so that one
// caller's batches cannot use it up. Other values leave MaxBatch.
func WithKMSBatchLimit(n int) Option {
	return func(i *Issuer) { i.rules.MaxBatchKMS = n }
}

// WithLambdaMemory tells the issuer the function's memory size in MB
// (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), which sets how much CPU time it has: a
// batch's signing time is estimated from it until the first batch has been
// measured (batch.go). 0 or less: not on Lambda, a whole vCPU per worker.
func WithLambdaMemory(mb int) Option {
	return func(i *Issuer) { i.memoryMB = mb }
}

// WithBatchWorkers bounds the signatures of a batch a local key makes at
// once; 0 or less: GOMAXPROCS (the default). A remote key's bound is its
// MaxInFlight.
func WithBatchWorkers(n int) Option {
	return func(i *Issuer) { i.maxWorkers = n }
}

// NewIssuer issues tokens living at most maxTTL (T) with keys from cache,
// with claims of at most DefaultMaxClaimsBytes unless an option says
// otherwise.
func NewIssuer(cache *KeyCache, maxTTL time.Duration, now func() time.Time, opts ...Option) *Issuer {
	i := &Issuer{keys: cache, maxTTL: maxTTL, now: now, // random: crypto/rand
		rules: request.Rules{MaxClaimsBytes: DefaultMaxClaimsBytes}}
	for _, opt := range opts {
		opt(i)
	}
	i.added = maxAdded
	if i.rules.Issuer != "" {
		i.iss, _ = json.Marshal(i.rules.Issuer) // a string always marshals
		i.added += len(`,"iss":`) + len(i.iss)
	}
	return i
}

// Invoke is the Lambda entry point: a request in, {"token":"..."} out; or
// {"batch":[request, ...]} in, {"tokens":["...", ...]} out, in order. A
// failure is a *RequestError, a *KeyUnavailableError or a *SigningError.
func (i *Issuer) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, batch, err := request.Parse(payload, &i.rules)
	if err != nil {
		return nil, err
	}
	if batch != nil {
		return i.invokeBatch(ctx, batch)
	}
	now := i.now().Unix()
	exp, err := req.Expiry(now, i.limit())
	if err != nil {
		return nil, err
	}
	key, err := i.key(ctx)
	if err != nil {
		return nil, err
	}
	// The claims are assembled on the stack and encoded straight into the
	// response: one allocation for the answer, none for the claims.
	var scratch [512]byte
	body, err := i.appendClaims(scratch[:0], &req, now, exp)
	if err != nil {
		return nil, &SigningError{err}
	}
	out := make([]byte, 0, len(`{"token":""}`)+key.tokenLen(len(body)))
	out = append(out, `{"token":"`...)
	if out, err = key.appendToken(ctx, out, body); err != nil {
		return nil, &SigningError{err}
	}
	return append(out, `"}`...), nil
}

// limit is T in seconds.
func (i *Issuer) limit() int64 { return int64(i.maxTTL / time.Second) }

// key is the key to sign with now.
func (i *Issuer) key(ctx context.Context) (*Key, error) {
	key, err := i.keys.Key(ctx)
	if err != nil {
		return nil, &KeyUnavailableError{err}
	}
	return key, nil
}

// appendClaims appends req's claims as signed at time now: the caller's,
// then iss, exp, iat and jti, each when the issuer sets it.
func (i *Issuer) appendClaims(dst []byte, req *request.Request, now int64, exp request.Expiry) ([]byte, error) {
	claims := req.Claims()
	if len(claims) < 2 {
		claims = []byte("{}") // a zero Request
	}
	dst = append(dst, claims[:len(claims)-1]...)
	more := len(claims) > 2
	if req.SetIss {
		dst = appendName(dst, more, `"iss":`)
		dst = append(dst, i.iss...)
		more = true
	}
	if exp.Set {
		dst = appendName(dst, more, `"exp":`)
		dst = strconv.AppendInt(dst, exp.At, 10)
		more = true
	}
	if req.SetIat {
		dst = appendName(dst, more, `"iat":`)
		dst = strconv.AppendInt(dst, now, 10)
		more = true
	}
	if req.SetJti {
		dst = appendName(dst, more, `"jti":`)
		var err error
		if dst, err = appendUUID(dst, i.random); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// maxAdded bounds what appendClaims adds to a request's claims, iss
// aside.
const maxAdded = len(`,"exp":-9223372036854775808,"iat":-9223372036854775808,"jti":"01234567-0123-0123-0123-0123456789ab"`)

func appendName(dst []byte, comma bool, name string) []byte {
	if comma {
		dst = append(dst, ',')
	}
	return append(dst, name...)
}

// appendToken appends header.claims.signature.
func (k *Key) appendToken(ctx context.Context, dst, claims []byte) ([]byte, error) {
	enc := base64.RawURLEncoding
	start := len(dst)
	dst = append(dst, k.prefix...)
	dst = enc.AppendEncode(dst, claims)
	// Capped: a signer cannot write into the rest of the buffer.
	sig, err := k.signer.Sign(ctx, dst[start:len(dst):len(dst)])
	if err != nil {
		return nil, fmt.Errorf("sign with key %s: %w", k.Kid, err)
	}
	dst = append(dst, '.')
	return enc.AppendEncode(dst, sig), nil
}

// tokenLen is an upper bound of the length of a token of claimsLen bytes
// of claims.
func (k *Key) tokenLen(claimsLen int) int {
	enc := base64.RawURLEncoding
	return len(k.prefix) + enc.EncodedLen(claimsLen) + 1 + enc.EncodedLen(k.sigLen)
}

// sign assembles header.claims.signature.
func (k *Key) sign(ctx context.Context, claims []byte) (string, error) {
	tok, err := k.appendToken(ctx, make([]byte, 0, k.tokenLen(len(claims))), claims)
	return string(tok), err
}

// SignProbe signs claims with key k as the issuer would (the rotator's
// testSecret step).
func (k *Key) SignProbe(ctx context.Context, claims map[string]any) (string, error) {
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return k.sign(ctx, body)
}

// appendUUID appends a random RFC 9562 version 4 UUID as a JSON string,
// from r, or from crypto/rand when r is nil.
func appendUUID(dst []byte, r io.Reader) ([]byte, error) {
	var u [16]byte
	if r == nil {
		rand.Read(u[:]) // never fails, and u stays on the stack
	} else {
		b := make([]byte, len(u))
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("jti: %w", err)
		}
		copy(u[:], b)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	dst = append(dst, '"')
	dst = hex.AppendEncode(dst, u[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[8:10])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[10:])
	return append(dst, '"'), nil
}
