package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"jwks-issuer/internal/perf"
	"jwks-issuer/pkg/authorizer"
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/token"
	"jwks-issuer/pkg/verify"
)

// verifyPaths are the authorizer's warm paths, against the verify floor and
// golang-jwt: pkg/verify's Verify with the key set cached (es256-verify-pkg),
// and the whole Lambda handler, a TOKEN authorizer event in and the policy
// out (es256-authorizer). The token is the signer's for perf.Payload, like
// the floor's; the verifier's clock stands still, so the key set, fetched
// once from a local server, stays fresh however long the run.
func verifyPaths() ([]perf.Path, error) {
	now := time.Now()
	rec, err := keys.NewRecord(keys.ES256, now)
	if err != nil {
		return nil, err
	}
	jwks := keys.MarshalSet([]keys.JWK{rec.PublicKeyJwk})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(jwks)
	}))
	quiet := slog.New(slog.DiscardHandler)
	load := func(context.Context) (*token.Key, error) { return token.KeyFromRecord(rec, nil) }
	issuer := token.NewIssuer(token.NewKeyCache(load, time.Hour, time.Now, quiet), time.Hour, time.Now)
	out, err := issuer.Invoke(context.Background(), []byte(perf.Payload))
	if err != nil {
		return nil, err
	}
	var resp struct{ Token string }
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, err
	}
	v, err := verify.New(verify.Config{JWKSURL: srv.URL, Algorithms: []string{"ES256"}, Audiences: []string{"hotsock"},
		ClockSkew: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := v.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("verify path: %w", err)
	}
	srv.Close() // fetched once: nothing more goes to it
	if _, err := v.Verify(ctx, resp.Token); err != nil {
		return nil, fmt.Errorf("verify path: %w", err)
	}
	h := authorizer.New(v, authorizer.Settings{ContextClaims: []string{"sub"}}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	event, _ := json.Marshal(map[string]string{"type": "TOKEN", "authorizationToken": "Bearer " + resp.Token,
		"methodArn": "arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/prod/GET/hello"})
	if out, err := h.Invoke(ctx, event); err != nil {
		return nil, fmt.Errorf("authorizer path: %w", err)
	} else if !json.Valid(out) {
		return nil, fmt.Errorf("authorizer path: %s", out)
	}
	const floor, baseline = "es256-verify-floor", "es256-verify-golangjwt"
	return []perf.Path{
		{Name: "es256-verify-pkg", Tokens: 1, Floor: floor, Baseline: baseline, Bench: func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, resp.Token); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{Name: "es256-authorizer", Tokens: 1, Floor: floor, Baseline: baseline, Bench: func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Invoke(ctx, event); err != nil {
					b.Fatal(err)
				}
			}
		}},
	}, nil
}
