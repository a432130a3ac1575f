package verify

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of the Config fields left zero.
const (
	DefaultMaxCacheAge     = time.Hour
	DefaultCacheAge        = 5 * time.Minute
	DefaultRefetchInterval = 30 * time.Second
	DefaultStaleIfError    = time.Hour
	DefaultFetchTimeout    = 5 * time.Second
	DefaultMaxTokenBytes   = 16 << 10
)

// MaxKeySetBytes is the largest key set or discovery document read. API
// Gateway and ALB refuse key sets over 150,000 bytes; this leaves room.
const MaxKeySetBytes = 1 << 20

// maxKeys is the most keys read from one key set.
const maxKeys = 1000

// Config says which tokens a Verifier accepts. Issuer or JWKSURL (or both)
// is required, and so is Audiences.
type Config struct {
	// Issuer is the issuer URL. Every token's iss must equal it byte for
	// byte. Unless JWKSURL is set, the key set is found through the
	// issuer's discovery document, <Issuer>/.well-known/openid-configuration,
	// whose issuer must equal Issuer too.
	Issuer string
	// JWKSURL is the key set's URL. When it is set no discovery document
	// is read, Algorithms is required, and iss is checked only if Issuer is
	// set as well.
	JWKSURL string
	// Audiences are the accepted values of aud: a token must name at least
	// one of them.
	Audiences []string
	// Algorithms are the accepted values of alg, from SupportedAlgorithms
	// ("none" and HMAC are never accepted). Empty: those the discovery
	// document lists in id_token_signing_alg_values_supported, as it is
	// refetched. Whatever the list, a token's alg must also be the alg of
	// the key its kid names, when that key has one.
	Algorithms []string
	// ClockSkew is the leeway on exp and nbf. Zero means none.
	ClockSkew time.Duration

	// MaxCacheAge caps how long a fetched key set is used: a response's
	// Cache-Control max-age (less its Age) counts, up to this. Zero means
	// DefaultMaxCacheAge. A response without max-age is kept for
	// DefaultCacheAge, within the same cap; no-cache and no-store mean it
	// is fetched again for the next token.
	MaxCacheAge time.Duration
	// RefetchInterval is the shortest time between two refetches caused by
	// tokens whose kid is not in the key set. Zero means
	// DefaultRefetchInterval.
	RefetchInterval time.Duration
	// StaleIfError is how long past its expiry the last key set fetched is
	// still used while fetches fail. Zero means DefaultStaleIfError;
	// negative means never.
	StaleIfError time.Duration
	// FetchTimeout bounds each fetch. Zero means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// MaxTokenBytes refuses longer tokens unread. Zero means
	// DefaultMaxTokenBytes.
	MaxTokenBytes int

	// HTTPClient fetches the documents. Nil means a client of its own.
	HTTPClient *http.Client
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives the fetches' outcomes. Nil means none.
	Logger *slog.Logger
}

// settings is a checked Config with its defaults applied.
type settings struct {
	Config
	discoveryURL string
	audiences    map[string]struct{}
	algs         algSet // zero: from the discovery document
}

// check refuses a Config that cannot verify tokens safely, and applies the
// defaults. The checks run in order and the first failure is returned; s
// holds what the checks before it set.
func (c Config) check() (settings, error) {
	s := settings{Config: c}
	for _, step := range configChecks {
		if err := step(&s); err != nil {
			return s, err
		}
	}
	s.applyDefaults()
	return s, nil
}

// configChecks are the checks of a Config, in the order their errors take
// precedence.
var configChecks = []func(*settings) error{
	(*settings).checkSource,
	(*settings).checkAudiences,
	(*settings).checkAlgorithms,
	(*settings).checkNotNegative,
}

// checkSource requires an issuer or a key set URL, each safe to fetch
// from, and finds the discovery document when no key set URL is given.
func (s *settings) checkSource() error {
	if s.Issuer == "" && s.JWKSURL == "" {
		return errors.New("verify: an issuer URL or a key set URL is required")
	}
	if s.Issuer != "" {
		if err := checkURL(s.Issuer); err != nil {
			return fmt.Errorf("verify: issuer %q: %w", s.Issuer, err)
		}
	}
	if s.JWKSURL != "" {
		if err := checkURL(s.JWKSURL); err != nil {
			return fmt.Errorf("verify: key set URL %q: %w", s.JWKSURL, err)
		}
		return nil
	}
	s.discoveryURL = strings.TrimSuffix(s.Issuer, "/") + "/.well-known/openid-configuration"
	return nil
}

// checkAudiences requires at least one audience, none empty, and makes the
// set tokens' aud is looked up in.
func (s *settings) checkAudiences() error {
	if len(s.Audiences) == 0 {
		return errors.New("verify: at least one audience is required: without an aud check, a token minted for any other service of this issuer would pass")
	}
	s.audiences = map[string]struct{}{}
	for _, a := range s.Audiences {
		if a == "" {
			return errors.New("verify: an audience is empty")
		}
		s.audiences[a] = struct{}{}
	}
	return nil
}

// checkAlgorithms reads the configured algorithms, which are required when
// there is no discovery document to take them from.
func (s *settings) checkAlgorithms() error {
	if len(s.Algorithms) == 0 {
		if s.JWKSURL != "" {
			return errors.New("verify: algorithms are required with a key set URL: there is no discovery document to take them from")
		}
		return nil
	}
	algs, err := parseAlgs(s.Algorithms, true)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	s.algs = algs
	return nil
}

// checkNotNegative refuses a negative duration or size where zero means
// the default. StaleIfError is not among them: negative means never.
func (s *settings) checkNotNegative() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"clock skew", s.ClockSkew}, {"max cache age", s.MaxCacheAge}, {"refetch interval", s.RefetchInterval}, {"fetch timeout", s.FetchTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("verify: %s is %v, must not be negative", d.name, d.v)
		}
	}
	if s.MaxTokenBytes < 0 {
		return fmt.Errorf("verify: max token bytes is %d, must not be negative", s.MaxTokenBytes)
	}
	return nil
}

// applyDefaults fills in the fields left zero. FetchTimeout comes before
// the HTTP client made with it.
func (s *settings) applyDefaults() {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&s.MaxCacheAge, DefaultMaxCacheAge}, {&s.RefetchInterval, DefaultRefetchInterval}, {&s.FetchTimeout, DefaultFetchTimeout}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	switch {
	case s.StaleIfError == 0:
		s.StaleIfError = DefaultStaleIfError
	case s.StaleIfError < 0:
		s.StaleIfError = 0
	}
	if s.MaxTokenBytes == 0 {
		s.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if s.HTTPClient == nil {
		s.HTTPClient = &http.Client{Timeout: s.FetchTimeout}
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
}

// CheckURL says why raw cannot be an issuer or key set URL: it must be an
// absolute https URL, or http to a loopback address for local runs (keys
// fetched in the clear could be swapped on the way).
func CheckURL(raw string) error { return checkURL(raw) }

// CheckAlgorithms says why names cannot be Config.Algorithms.
func CheckAlgorithms(names []string) error {
	_, err := parseAlgs(names, true)
	return err
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute URL such as https://issuer.example.com")
	}
	if u.User != nil {
		return errors.New("must not carry user info")
	}
	if u.Fragment != "" {
		return errors.New("must not have a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("must use https (http only for 127.0.0.1, ::1 or localhost, for local runs)")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
