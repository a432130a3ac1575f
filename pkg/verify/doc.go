// Package verify checks JWTs from jwks-issuer, or from any issuer that
// publishes a JWK Set, the way a verifier must to keep working through key
// rotations (docs/verifying.md has the rules):
//
//	v, err := verify.New(verify.Config{
//		Issuer:    "https://id.example.com", // discovery: the key set and the algorithms
//		Audiences: []string{"hotsock"},
//		ClockSkew: time.Minute,
//	})
//	...
//	defer v.Close()
//	tok, err := v.Verify(ctx, raw)
//	switch {
//	case errors.Is(err, verify.ReasonExpired): // ...
//	case err != nil: // every refusal is a *verify.Error with a Reason
//	}
//
// The key set is fetched from the configured source only, never from a URL
// or key in the token; it is cached for its Cache-Control max-age less its
// Age (capped by Config.MaxCacheAge, with no floor), refreshed in the
// background before it expires, refetched when a token names an unknown
// kid (at most once per Config.RefetchInterval, one fetch shared by every
// token waiting), and kept for Config.StaleIfError past its expiry while
// fetches fail.
//
// A token must be a compact JWS of an asymmetric algorithm (never none or
// HMAC) that is allowed by the configuration or, without one, by the
// discovery document, and that is the alg of the key its kid names when
// the key has one. It must carry exp, and nbf if present must have passed
// (both with the clock skew); iss must be the configured issuer, aud must
// name a configured audience. Tokens over Config.MaxTokenBytes, headers
// with crit, and headers or claims that give a name twice are refused.
//
// The package holds no global state: every Verifier has its own cache and
// goroutine, stopped by Close. Config.Now and Config.HTTPClient let tests
// drive the clock and the network.
package verify
