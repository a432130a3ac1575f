package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// document is one fetched response.
type document struct {
	body        []byte // nil when notModified
	etag        string
	ttl         time.Duration
	notModified bool
}

// get fetches url, conditionally on etag when it is set.
func (s *settings) get(ctx context.Context, url, etag string) (document, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return document{}, err
	}
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := s.HTTPClient.Do(req)
	if err != nil {
		return document{}, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	doc := document{etag: resp.Header.Get("ETag"), ttl: freshness(resp.Header, s.MaxCacheAge)}
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		doc.notModified = true
		if doc.etag == "" {
			doc.etag = etag
		}
		return doc, nil
	case resp.StatusCode != http.StatusOK:
		return document{}, fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	doc.body, err = io.ReadAll(io.LimitReader(resp.Body, MaxKeySetBytes+1))
	if err != nil {
		return document{}, fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	if len(doc.body) > MaxKeySetBytes {
		return document{}, fmt.Errorf("GET %s: the body is over %d bytes", url, MaxKeySetBytes)
	}
	return doc, nil
}

// freshness is how long a response may be used (RFC 9111 section 4.2.1,
// for a private cache): its max-age less its Age, DefaultCacheAge when it
// has no max-age, zero with no-cache or no-store, never above limit.
func freshness(h http.Header, limit time.Duration) time.Duration {
	maxAge := int64(-1)
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					return 0 // an invalid max-age makes the response stale
				}
				if maxAge < 0 || n < maxAge {
					maxAge = n
				}
			}
		}
	}
	if maxAge < 0 {
		return min(DefaultCacheAge, limit)
	}
	fresh := maxAge
	if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
		fresh -= age
	}
	if fresh <= 0 {
		return 0
	}
	if fresh >= int64(limit/time.Second) {
		return limit
	}
	return time.Duration(fresh) * time.Second
}

// discovery is what a verifier reads of an OpenID Connect discovery
// document.
type discovery struct {
	Issuer  string   `json:"issuer"`
	JWKSURI string   `json:"jwks_uri"`
	Algs    []string `json:"id_token_signing_alg_values_supported"`
	allowed algSet
}

func (s *settings) parseDiscovery(body []byte) (*discovery, error) {
	var d discovery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("discovery document %s: %w", s.discoveryURL, err)
	}
	if d.Issuer != s.Issuer {
		return nil, fmt.Errorf("discovery document %s: issuer is %q, not %q", s.discoveryURL, d.Issuer, s.Issuer)
	}
	if err := checkURL(d.JWKSURI); err != nil {
		return nil, fmt.Errorf("discovery document %s: jwks_uri %q: %w", s.discoveryURL, d.JWKSURI, err)
	}
	d.allowed, _ = parseAlgs(d.Algs, false)
	if d.allowed == 0 && s.algs == 0 {
		return nil, fmt.Errorf("discovery document %s: id_token_signing_alg_values_supported %q names no algorithm this verifier accepts", s.discoveryURL, d.Algs)
	}
	return &d, nil
}

// load fetches the discovery document (if configured) and the key set,
// reusing prev's where the server answers Not Modified. It returns the new
// set and the kids it skipped.
func (s *settings) load(ctx context.Context, prev *keySet) (*keySet, []skipped, error) {
	started := s.Now()
	next := &keySet{fetched: started, allowed: s.algs, jwksURL: s.JWKSURL}
	ttl := s.MaxCacheAge
	if s.discoveryURL != "" {
		var etag string
		if prev != nil && prev.disc != nil {
			etag = prev.discETag
		}
		doc, err := s.get(ctx, s.discoveryURL, etag)
		if err != nil {
			return nil, nil, err
		}
		ttl = min(ttl, doc.ttl)
		next.discETag = doc.etag
		if doc.notModified {
			next.disc = prev.disc
		} else if next.disc, err = s.parseDiscovery(doc.body); err != nil {
			return nil, nil, err
		}
		next.jwksURL = next.disc.JWKSURI
		if s.algs == 0 {
			next.allowed = next.disc.allowed
		}
	}
	var etag string
	if prev != nil && prev.jwksURL == next.jwksURL {
		etag = prev.jwksETag
	}
	doc, err := s.get(ctx, next.jwksURL, etag)
	if err != nil {
		return nil, nil, err
	}
	ttl = min(ttl, doc.ttl)
	next.jwksETag = doc.etag
	var skips []skipped
	if doc.notModified {
		next.byKid, next.kids = prev.byKid, prev.kids
	} else if next.byKid, next.kids, skips, err = parseKeySet(doc.body); err != nil {
		return nil, skips, fmt.Errorf("key set %s: %w", next.jwksURL, err)
	}
	next.expires = started.Add(ttl)
	next.refreshAt = started.Add(ttl - refreshMargin(ttl))
	return next, skips, nil
}

// refreshMargin is how long before expiry a key set is fetched again, so
// that no token waits for the fetch: a quarter of its life, at most 30 s.
func refreshMargin(ttl time.Duration) time.Duration {
	return min(ttl/4, 30*time.Second)
}

var errClosed = errors.New("the verifier is closed")

var (
	errRateLimited = errors.New("a refetch for an unknown kid ran less than the refetch interval ago")
	errNoFetch     = errors.New("the key set has not been fetched")
)
