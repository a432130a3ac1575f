package token

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"jwks-issuer/pkg/keys"
)

// errorType is the errorType a Lambda caller sees for what Invoke returns,
// from aws-lambda-go itself: it names the error after its Go type.
func errorType(t *testing.T, iss *Issuer, payload string) (typ, msg string) {
	t.Helper()
	var resp messages.InvokeResponse
	req := &messages.InvokeRequest{Payload: []byte(payload), Deadline: messages.InvokeRequest_Timestamp{Seconds: time.Now().Add(time.Minute).Unix()}}
	//lint:ignore SA1019 the library's own conversion of an error to errorType, which the runtime loop uses too
	if err := lambda.NewFunction(iss).Invoke(req, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil {
		return "", ""
	}
	return resp.Error.Type, resp.Error.Message
}

// staticSecret is a secret whose AWSCURRENT value is value, or err.
type staticSecret struct {
	value []byte
	err   error
}

func (s staticSecret) GetStage(context.Context, string) (string, []byte, error) {
	return "v1", s.value, s.err
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// errorCase is one failure the signer can return to a Lambda caller.
type errorCase struct {
	name, payload string
	issuer        func(t *testing.T) *Issuer
	want          string // errorType
	says          string // in the message
	is            error  // errors.Is holds, when set
}

// errorCases cover every failure class the signer returns.
func errorCases() []errorCase {
	single := `{"claims":{"sub":"u1"},"setJti":true}`
	batch := batchOf(`{"claims":{}}`, `{"claims":{}}`, `{"claims":{}}`)
	fromSecret := func(s staticSecret) func(t *testing.T) *Issuer {
		return func(t *testing.T) *Issuer {
			c := &clock{now0}
			return NewIssuer(NewKeyCache(SecretKeyLoader(s, nil), time.Minute, c.Now, quietLog()), time.Hour, c.Now)
		}
	}
	failingSigner := func(remote int) func(t *testing.T) *Issuer {
		return func(t *testing.T) *Issuer {
			iss, _, _ := newIssuer(t, keys.ES256)
			c := wrapSigner(iss, remote)
			c.fail = func(int64) error { return errors.New("kms: throttled") }
			return iss
		}
	}
	return []errorCase{
		{name: "bad request", payload: `{"claims":{},"ttl":-5}`, want: "RequestError", says: "invalid request: ttl is -5",
			issuer: func(t *testing.T) *Issuer { iss, _, _ := newIssuer(t, keys.ES256); return iss }},
		{name: "no key yet", payload: single, want: "KeyUnavailableError", says: "no signing key yet", is: ErrNoKey,
			issuer: fromSecret(staticSecret{value: []byte("{}")})},
		{name: "secret unreadable", payload: single, want: "KeyUnavailableError", says: "read signing key: secrets manager unavailable",
			issuer: fromSecret(staticSecret{err: errors.New("secrets manager unavailable")})},
		{name: "key record in KMS without a KMS client", payload: single, want: "KeyUnavailableError", says: "KEY_CUSTODY=kms",
			issuer: func(t *testing.T) *Issuer {
				rec, _ := keys.NewRecord(keys.ES256, now0)
				rec.PrivateKeyPem, rec.KMSKeyID = "", "arn:aws:kms:eu-west-1:123456789012:key/example"
				value, err := json.Marshal(rec)
				if err != nil {
					t.Fatal(err)
				}
				return fromSecret(staticSecret{value: value})(t)
			}},
		{name: "cached key older than the cache bound", payload: single, want: "KeyUnavailableError", says: "older than KEY_CACHE_SECONDS",
			issuer: func(t *testing.T) *Issuer {
				rec, _ := keys.NewRecord(keys.ES256, now0)
				c := &clock{now0}
				failing := false
				load := func(context.Context) (*Key, error) {
					if failing {
						return nil, errors.New("secrets manager unavailable")
					}
					return KeyFromRecord(rec, nil)
				}
				iss := NewIssuer(NewKeyCache(load, time.Minute, c.Now, quietLog()), time.Hour, c.Now)
				if _, err := iss.Invoke(context.Background(), []byte(`{"claims":{}}`)); err != nil {
					t.Fatal(err)
				}
				failing, c.t = true, c.t.Add(time.Minute)
				return iss
			}},
		{name: "signature refused", payload: single, want: "SigningError", says: "sign with key",
			issuer: failingSigner(0)},
		{name: "signature refused in a batch signed in turn", payload: batch, want: "SigningError", says: "batch[0]: sign with key",
			issuer: failingSigner(0)},
		{name: "signature refused in a batch signed concurrently", payload: batch, want: "SigningError", says: "kms: throttled",
			issuer: failingSigner(4)},
		{name: "no randomness for jti", payload: single, want: "SigningError", says: "jti: ",
			issuer: func(t *testing.T) *Issuer {
				iss, _, _ := newIssuer(t, keys.ES256)
				iss.random = failingReader{}
				return iss
			}},
	}
}

// Every failure reaches a Lambda caller with an errorType that says what
// to do: RequestError (fix the request), KeyUnavailableError or
// SigningError (retry later); never Go's errorString or wrapError.
func TestErrorTypes(t *testing.T) {
	for _, tc := range errorCases() {
		t.Run(tc.name, func(t *testing.T) {
			iss := tc.issuer(t)
			typ, msg := errorType(t, iss, tc.payload)
			if typ != tc.want || !strings.Contains(msg, tc.says) {
				t.Fatalf("errorType %q, message %q; want %s saying %q", typ, msg, tc.want, tc.says)
			}
			_, err := iss.Invoke(context.Background(), []byte(tc.payload))
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("%v is not %v", err, tc.is)
			}
			if IsRequestError(err) != (tc.want == "RequestError") {
				t.Fatalf("IsRequestError(%v) = %v", err, IsRequestError(err))
			}
			if strings.Contains(msg, "PRIVATE KEY") {
				t.Fatalf("message carries key material: %s", msg)
			}
		})
	}
}

// The context a batch ends with is a SigningError naming the first item
// left unsigned.
func TestBatchCancelledIsSigningError(t *testing.T) {
	iss, _, _ := newIssuer(t, keys.ES256)
	wrapSigner(iss, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := iss.Invoke(ctx, []byte(batchOf(`{"claims":{}}`, `{"claims":{}}`)))
	var se *SigningError
	if !errors.As(err, &se) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("error %v (%T)", err, err)
	}
}
