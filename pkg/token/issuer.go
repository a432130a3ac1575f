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
)

// Issuer turns requests into signed tokens.
type Issuer struct {
	keys interface {
		Key(context.Context) (*Key, error)
	}
	maxTTL time.Duration
	now    func() time.Time
	random io.Reader
}

// NewIssuer issues tokens living at most maxTTL (T) with keys from cache.
func NewIssuer(cache *KeyCache, maxTTL time.Duration, now func() time.Time) *Issuer {
	return &Issuer{keys: cache, maxTTL: maxTTL, now: now, random: rand.Reader}
}

// Invoke is the Lambda entry point: invoke JSON in, {"token":"..."} out.
func (i *Issuer) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := ParseRequest(payload)
	if err != nil {
		return nil, err
	}
	tok, err := i.Issue(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(tok)+12)
	out = append(out, `{"token":"`...)
	out = append(out, tok...)
	return append(out, `"}`...), nil
}

// Issue signs one token. The claims map is modified.
func (i *Issuer) Issue(ctx context.Context, req Request) (string, error) {
	now := i.now().Unix()
	limit := int64(i.maxTTL / time.Second)
	claims := req.Claims
	switch {
	case req.TTL > limit:
		return "", badRequest("ttl is %d, the limit is %d seconds (MAX_TOKEN_TTL_SECONDS)", req.TTL, limit)
	case req.TTL > 0:
		claims["exp"] = strconv.AppendInt(nil, now+req.TTL, 10)
	case claims["exp"] != nil:
		exp, err := strconv.ParseFloat(string(claims["exp"]), 64)
		if err != nil {
			return "", badRequest("claims.exp must be a number of seconds since the epoch, got %s", kind(claims["exp"]))
		}
		if exp > float64(now+limit) {
			return "", badRequest("claims.exp is %d seconds from now, the limit is %d seconds (MAX_TOKEN_TTL_SECONDS)", int64(exp)-now, limit)
		}
	default:
		claims["exp"] = strconv.AppendInt(nil, now+limit, 10)
	}
	if req.SetIat {
		claims["iat"] = strconv.AppendInt(nil, now, 10)
	}
	if req.SetJti {
		jti, err := uuidV4(i.random)
		if err != nil {
			return "", err
		}
		claims["jti"] = jti
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", badRequest("claims: %v", err)
	}
	key, err := i.keys.Key(ctx)
	if err != nil {
		return "", err
	}
	return key.sign(ctx, body)
}

// sign assembles header.claims.signature.
func (k *Key) sign(ctx context.Context, claims []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(k.prefix)+enc.EncodedLen(len(claims))+1+enc.EncodedLen(512))
	buf = append(buf, k.prefix...)
	buf = enc.AppendEncode(buf, claims)
	sig, err := k.signer.Sign(ctx, buf)
	if err != nil {
		return "", fmt.Errorf("sign with key %s: %w", k.Kid, err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
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

// uuidV4 returns a random RFC 9562 version 4 UUID as a JSON string.
func uuidV4(r io.Reader) (json.RawMessage, error) {
	var u [16]byte
	if _, err := io.ReadFull(r, u[:]); err != nil {
		return nil, fmt.Errorf("jti: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	out := make([]byte, 0, 38)
	out = append(out, '"')
	out = hex.AppendEncode(out, u[0:4])
	out = append(out, '-')
	out = hex.AppendEncode(out, u[4:6])
	out = append(out, '-')
	out = hex.AppendEncode(out, u[6:8])
	out = append(out, '-')
	out = hex.AppendEncode(out, u[8:10])
	out = append(out, '-')
	out = hex.AppendEncode(out, u[10:])
	return append(out, '"'), nil
}
