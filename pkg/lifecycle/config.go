// Package lifecycle holds the decisions of key rotation as pure functions of
// (state, config, now): may NEXT be promoted, which keys are published, when
// a retired key may go. It does no I/O and reads no clock.
package lifecycle

import (
	"fmt"
	"time"
)

// Config holds the timing parameters of the invariants in docs/lifecycle.md
// ("Timing invariants"); README's configuration table names their variables.
type Config struct {
	MaxTokenTTL     time.Duration // T: no token lives longer
	KeyCacheMaxAge  time.Duration // S: a signer signs with a cached key at most this long after fetching it
	JWKSMaxAge      time.Duration // M: verifiers and the CDN may cache the key set this long
	ActivationGrace time.Duration // Ga: a key is published this long before it signs
	RetirementGrace time.Duration // Gr: extra time a retired key stays published
	ClockSkew       time.Duration // k: verifiers' clock-skew allowance
}

// Defaults is the default configuration, as template.yaml deploys it and
// README's configuration table lists it.
func Defaults() Config {
	return Config{
		MaxTokenTTL:     time.Hour,
		KeyCacheMaxAge:  time.Minute,
		JWKSMaxAge:      5 * time.Minute,
		ActivationGrace: 24 * time.Hour,
		RetirementGrace: time.Hour,
		ClockSkew:       time.Minute,
	}
}

// Validate refuses a configuration that would break an invariant, naming the
// variables involved.
func (c Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"KEY_CACHE_SECONDS", c.KeyCacheMaxAge},
		{"JWKS_MAX_AGE_SECONDS", c.JWKSMaxAge},
		{"ACTIVATION_GRACE_SECONDS", c.ActivationGrace},
		{"RETIREMENT_GRACE_SECONDS", c.RetirementGrace},
		{"CLOCK_SKEW_SECONDS", c.ClockSkew},
	} {
		if d.v < 0 {
			return fmt.Errorf("%s is %d, must be 0 or more", d.name, int64(d.v/time.Second))
		}
	}
	if c.MaxTokenTTL < time.Second {
		return fmt.Errorf("MAX_TOKEN_TTL_SECONDS is %d, must be at least 1", int64(c.MaxTokenTTL/time.Second))
	}
	if c.ActivationGrace < c.JWKSMaxAge {
		return fmt.Errorf("ACTIVATION_GRACE_SECONDS (%d) is below JWKS_MAX_AGE_SECONDS (%d): "+
			"verifiers holding a cached key set would reject tokens of a newly activated key",
			int64(c.ActivationGrace/time.Second), int64(c.JWKSMaxAge/time.Second))
	}
	return nil
}

// Retention is how long a retired key stays published after AWSCURRENT left
// it: a signer may keep signing with it for S, its last token lives T, plus
// the grace and the verifiers' skew.
func (c Config) Retention() time.Duration {
	return c.KeyCacheMaxAge + c.MaxTokenTTL + c.RetirementGrace + c.ClockSkew
}
