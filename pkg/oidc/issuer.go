// Package oidc holds the issuer's OpenID Connect face: the issuer URL, the
// rules AWS's verifiers set for it, and the discovery document published
// beside the key set.
package oidc

import (
	"fmt"
	"net/url"
	"strings"
)

// Issuer is a checked issuer URL: the value of every token's iss and of the
// discovery document's issuer, byte for byte.
type Issuer struct {
	url    string
	origin string // scheme://host[:port], where the bucket's object keys are rooted
	path   string // "" or "tenant/a": the path below the origin, without slashes at its ends
}

// ParseIssuer checks raw against what the verifiers that trust an OIDC
// issuer accept (IAM's OIDC providers and API Gateway's JWT authorizers are
// the strictest): https, no port, no query, no fragment, no user info, no
// trailing slash. For local runs, http://127.0.0.1:PORT and
// http://localhost:PORT (any port) are accepted too. name is the variable
// the value came from, for the error.
func ParseIssuer(name, raw string) (Issuer, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return Issuer{}, fmt.Errorf("%s is %q: must be an absolute URL such as https://issuer.example.com", name, raw)
	}
	if rule := brokenRule(u, raw); rule != "" {
		return Issuer{}, fmt.Errorf("%s is %q: %s", name, raw, rule)
	}
	return Issuer{url: raw, origin: u.Scheme + "://" + u.Host, path: strings.Trim(u.Path, "/")}, nil
}

// brokenRule is the first of the verifiers' rules that u breaks, or "".
func brokenRule(u *url.URL, raw string) string {
	local := u.Scheme == "http" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost")
	for _, r := range []struct {
		broken bool
		rule   string
	}{
		{u.Scheme != "https" && !local, "must use https (http only for 127.0.0.1 or localhost, for local runs)"},
		{u.Port() != "" && !local, "must not name a port: AWS's verifiers accept the default https port only"},
		{u.User != nil, "must not carry user info"},
		{u.RawQuery != "" || u.ForceQuery, "must not have a query"},
		{u.Fragment != "" || strings.Contains(raw, "#"), "must not have a fragment"},
		{strings.HasSuffix(raw, "/"), "must not end with a slash: iss must equal it byte for byte, and verifiers compare exactly"},
		{u.RawPath != "" || strings.Contains(u.Path, "//") || strings.ContainsAny(u.Path, " %"),
			"its path must be plain segments (no escapes, spaces or empty segments)"},
		{u.Scheme+"://"+u.Host+u.Path != raw, "must be in canonical form (lower-case scheme, nothing but scheme, host and path)"},
	} {
		if r.broken {
			return r.rule
		}
	}
	return ""
}

// String is the issuer URL.
func (i Issuer) String() string { return i.url }

// IsZero tells whether no issuer is configured.
func (i Issuer) IsZero() bool { return i.url == "" }

// ObjectKey is the default object key of a document at name (such as
// ".well-known/jwks.json") for this issuer: below the issuer's path, so that
// <issuer>/<name> resolves through the distribution to the object.
func (i Issuer) ObjectKey(name string) string {
	if i.path == "" {
		return name
	}
	return i.path + "/" + name
}

// URLOf is the public URL of the object at key, served from the issuer's
// origin.
func (i Issuer) URLOf(key string) string { return i.origin + "/" + strings.TrimPrefix(key, "/") }
