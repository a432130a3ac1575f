package authorizer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"jwks-issuer/pkg/verify"
)

// Settings is the authorizer's configuration.
type Settings struct {
	// Verify says which tokens are valid. Load leaves its HTTPClient,
	// Logger and Now for the caller.
	Verify verify.Config
	// RequiredScopes must all be in a token's scope (a space-separated
	// string) or scp (an array of strings, or a string like scope). A valid
	// token without them is denied (403) rather than refused (401).
	RequiredScopes []string
	// ContextClaims are passed to the integration in the authorizer's
	// context.
	ContextClaims []string
}

// DefaultClockSkew is CLOCK_SKEW_SECONDS unless set: the issuer's default
// ClockSkewSeconds, which its retention of retired keys covers.
const DefaultClockSkew = 60 * time.Second

// Load reads the settings from the environment, naming the variable in
// every error:
//
//	ISSUER_URL          the issuer: its discovery document names the key set
//	                    and the algorithms, and iss must equal it
//	JWKS_URL            the key set, instead of the discovery document
//	ALLOWED_AUDIENCES   comma-separated; required
//	ALLOWED_ALGORITHMS  comma-separated; default: the discovery document's
//	                    (required with JWKS_URL)
//	CLOCK_SKEW_SECONDS  leeway on exp and nbf, 0 to 3600; default 60
//	REQUIRED_SCOPES     space-separated
//	CONTEXT_CLAIMS      comma-separated; default sub
func Load(getenv func(string) string) (Settings, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	var s Settings
	issuer, jwksURL := get("ISSUER_URL"), get("JWKS_URL")
	for _, u := range []struct{ name, value string }{{"ISSUER_URL", issuer}, {"JWKS_URL", jwksURL}} {
		if u.value == "" {
			continue
		}
		if err := verify.CheckURL(u.value); err != nil {
			return s, fmt.Errorf("%s is %q: %v", u.name, u.value, err)
		}
	}
	if issuer == "" && jwksURL == "" {
		return s, fmt.Errorf("ISSUER_URL (the issuer, whose discovery document names the key set) or JWKS_URL (the key set) is required")
	}
	audiences, err := list(get, "ALLOWED_AUDIENCES")
	if err != nil {
		return s, err
	}
	if len(audiences) == 0 {
		return s, fmt.Errorf("ALLOWED_AUDIENCES is required: without it, a token the issuer minted for any other service would pass")
	}
	algs, err := list(get, "ALLOWED_ALGORITHMS")
	if err != nil {
		return s, err
	}
	if err := verify.CheckAlgorithms(algs); err != nil {
		return s, fmt.Errorf("ALLOWED_ALGORITHMS: %v", err)
	}
	if len(algs) == 0 && jwksURL != "" {
		return s, fmt.Errorf("ALLOWED_ALGORITHMS is required with JWKS_URL: there is no discovery document to take the algorithms from")
	}
	skew := DefaultClockSkew
	if v := get("CLOCK_SKEW_SECONDS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			return s, fmt.Errorf("CLOCK_SKEW_SECONDS is %q, must be a whole number", v)
		case n < 0 || n > 3600:
			return s, fmt.Errorf("CLOCK_SKEW_SECONDS is %d, must be 0 to 3600", n)
		}
		skew = time.Duration(n) * time.Second
	}
	claims, err := list(get, "CONTEXT_CLAIMS")
	if err != nil {
		return s, err
	}
	if claims == nil {
		claims = []string{"sub"}
	}
	s.Verify = verify.Config{Issuer: issuer, JWKSURL: jwksURL, Audiences: audiences, Algorithms: algs, ClockSkew: skew}
	s.RequiredScopes = strings.Fields(get("REQUIRED_SCOPES"))
	s.ContextClaims = claims
	return s, nil
}

// list reads a comma-separated list; empty entries and repeats are refused.
func list(get func(string) string, name string) ([]string, error) {
	v := get(name)
	if v == "" {
		return nil, nil
	}
	var out []string
	for i, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%s is %q: entry %d is empty", name, v, i+1)
		}
		for _, seen := range out {
			if seen == item {
				return nil, fmt.Errorf("%s is %q: %q is listed twice", name, v, item)
			}
		}
		out = append(out, item)
	}
	return out, nil
}
