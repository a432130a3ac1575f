// Package rotation runs the Secrets Manager rotation protocol for signing
// keys (createSecret, setSecret, testSecret, finishSecret) and the scheduled
// cleanup, and publishes the key set. It is the sequence of store calls
// around the decisions of package lifecycle; it decides nothing itself.
//
// Each step lives in the file named after it: create.go (createSecret),
// check.go (setSecret and testSecret), finish.go (finishSecret), cleanup.go
// (the scheduled cleanup and the KMS tidy), publish.go (the conditional
// write of the key set, used by all of them) and snapshot.go (reading the
// secret).
package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
)

// Config is the rotator's configuration.
type Config struct {
	Lifecycle lifecycle.Config
	Algorithm keys.Algorithm
	// SecretID is the secret this rotator serves, to refuse events for others.
	SecretID string
	// PublishAttempts bounds the recompute-and-retry loop of a conflicting
	// key-set write.
	PublishAttempts int
}

// Rotator rotates the keys of one secret and publishes its key set.
type Rotator struct {
	cfg     Config
	secret  store.Secrets
	jwks    store.Objects
	custody Custody
	now     func() time.Time
	log     *slog.Logger
	// discovery is nil when no issuer is configured.
	discovery *discovery
	// parameter is the signing-key parameter (Parameter Store custody), or nil.
	parameter store.Parameter
	// adoption is the key the first rotation takes over, or nil.
	adoption *Adoption
	// metrics writes the rotator's metrics, or is nil (metrics.go).
	metrics *rotatorMetrics
}

// New validates cfg and returns a rotator.
func New(cfg Config, secret store.Secrets, jwks store.Objects, custody Custody, now func() time.Time, log *slog.Logger, opts ...Option) (*Rotator, error) {
	if err := cfg.Lifecycle.Validate(); err != nil {
		return nil, err
	}
	if _, err := keys.ParseAlgorithm(string(cfg.Algorithm)); err != nil {
		return nil, fmt.Errorf("KEY_ALGORITHM: %w", err)
	}
	if cfg.PublishAttempts <= 0 {
		cfg.PublishAttempts = 5
	}
	r := &Rotator{cfg: cfg, secret: secret, jwks: jwks, custody: custody, now: now, log: log}
	for _, opt := range opts {
		opt(r)
	}
	return r, nil
}

// Event is a Secrets Manager rotation event, or {"action":"cleanup"}.
type Event struct {
	Step               string `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
	Action             string `json:"action"`
}

// Invoke is the Lambda entry point.
func (r *Rotator) Invoke(ctx context.Context, payload []byte) (_ []byte, err error) {
	var ev Event
	defer func() { r.metrics.outcome(r, ev, err) }()
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("invalid event: %w", err)
	}
	if err := r.Handle(ctx, ev); err != nil {
		r.log.Error("rotation step failed", "step", ev.Step, "action", ev.Action, "token", ev.ClientRequestToken, "error", err.Error())
		return nil, err
	}
	return []byte("null"), nil
}

// Handle runs one event.
func (r *Rotator) Handle(ctx context.Context, ev Event) error {
	if ev.Action != "" {
		if ev.Action != "cleanup" {
			return fmt.Errorf("invalid event: action %q is unknown (expected \"cleanup\")", ev.Action)
		}
		return r.Cleanup(ctx)
	}
	if !sameSecret(r.cfg.SecretID, ev.SecretID) {
		return fmt.Errorf("invalid event: SecretId %q is not this rotator's secret %q", ev.SecretID, r.cfg.SecretID)
	}
	if ev.ClientRequestToken == "" {
		return errors.New("invalid event: ClientRequestToken is required")
	}
	r.log.Info("rotation step", "step", ev.Step, "token", ev.ClientRequestToken)
	switch ev.Step {
	case "createSecret":
		return r.CreateSecret(ctx, ev.ClientRequestToken)
	case "setSecret":
		return r.SetSecret(ctx, ev.ClientRequestToken)
	case "testSecret":
		return r.TestSecret(ctx, ev.ClientRequestToken)
	case "finishSecret":
		return r.FinishSecret(ctx, ev.ClientRequestToken)
	}
	return fmt.Errorf("invalid event: Step %q is unknown (expected createSecret, setSecret, testSecret or finishSecret)", ev.Step)
}

// sameSecret compares a configured secret id (name or ARN) with the ARN of
// an event.
func sameSecret(configured, event string) bool {
	if configured == "" || configured == event {
		return true
	}
	// arn:aws:secretsmanager:region:account:secret:NAME-6RandomChars
	if i := strings.Index(event, ":secret:"); i >= 0 {
		name := event[i+len(":secret:"):]
		if j := strings.LastIndexByte(name, '-'); j > 0 && name[:j] == configured {
			return true
		}
		return name == configured
	}
	return false
}
