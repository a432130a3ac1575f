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
	issuer, jwksURL, err := loadSource(get)
	if err != nil {
		return s, err
	}
	audiences, err := loadAudiences(get)
	if err != nil {
		return s, err
	}
	algs, err := loadAlgorithms(get, jwksURL)
	if err != nil {
		return s, err
	}
	skew, err := loadClockSkew(get)
	if err != nil {
		return s, err
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

// loadSource reads ISSUER_URL and JWKS_URL: either is enough, and each that
// is set must be a URL the verifier fetches from.
func loadSource(get func(string) string) (issuer, jwksURL string, err error) {
	issuer, jwksURL = get("ISSUER_URL"), get("JWKS_URL")
	for _, u := range []struct{ name, value string }{{"ISSUER_URL", issuer}, {"JWKS_URL", jwksURL}} {
		if u.value == "" {
			continue
		}
		if err := verify.CheckURL(u.value); err != nil {
			return "", "", fmt.Errorf("%s is %q: %v", u.name, u.value, err)
		}
	}
	if issuer == "" && jwksURL == "" {
		return "", "", fmt.Errorf("ISSUER_URL (the issuer, whose discovery document names the key set) or JWKS_URL (the key set) is required")
	}
	return issuer, jwksURL, nil
}

// loadAudiences reads ALLOWED_AUDIENCES, which is required.
func loadAudiences(get func(string) string) ([]string, error) {
	audiences, err := list(get, "ALLOWED_AUDIENCES")
	if err != nil {
		return nil, err
	}
	if len(audiences) == 0 {
		return nil, fmt.Errorf("ALLOWED_AUDIENCES is required: without it, a token the issuer minted for any other service would pass")
	}
	return audiences, nil
}

// loadAlgorithms reads ALLOWED_ALGORITHMS, which is required with JWKS_URL.
func loadAlgorithms(get func(string) string, jwksURL string) ([]string, error) {
	algs, err := list(get, "ALLOWED_ALGORITHMS")
	if err != nil {
		return nil, err
	}
	if err := verify.CheckAlgorithms(algs); err != nil {
		return nil, fmt.Errorf("ALLOWED_ALGORITHMS: %v", err)
	}
	if len(algs) == 0 && jwksURL != "" {
		return nil, fmt.Errorf("ALLOWED_ALGORITHMS is required with JWKS_URL: there is no discovery document to take the algorithms from")
	}
	return algs, nil
}

// loadClockSkew reads CLOCK_SKEW_SECONDS, DefaultClockSkew when unset.
func loadClockSkew(get func(string) string) (time.Duration, error) {
	v := get("CLOCK_SKEW_SECONDS")
	if v == "" {
		return DefaultClockSkew, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("CLOCK_SKEW_SECONDS is %q, must be a whole number", v)
	case n < 0 || n > 3600:
		return 0, fmt.Errorf("CLOCK_SKEW_SECONDS is %d, must be 0 to 3600", n)
	}
	return time.Duration(n) * time.Second, nil
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
