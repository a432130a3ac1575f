package operator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/s3store"
)

func runEmergency(ctx context.Context, r *runner, args []string) int {
	fs := r.flags()
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to follow the rotation, and then the published key set")
	if _, status, ok := r.parse(fs, args); !ok {
		return status
	}
	p, status := r.prepareRotation(ctx)
	if p == nil {
		return status
	}
	c, t, before := p.c, p.t, p.before
	s := before.state
	if s.Current == nil {
		r.printf("the secret holds no key yet: there is nothing to revoke; run its first rotation: jwks-issuer rotate %s\n",
			strings.TrimSpace(stackFlag(t)))
		return ExitProblem
	}
	if status, ok := r.checkEnabled(t, before); !ok {
		return status
	}
	token, status, ok := r.stoppedEmergency(t, before, &s, p.limited)
	if !ok {
		return status
	}
	revoked := revokedFor(s, token)
	r.announceEmergency(t, s, revoked)
	if !*yes && !r.confirm() {
		r.printf("not confirmed: nothing changed\n")
		return ExitProblem
	}
	began := r.now()
	if err := r.markEmergency(ctx, c, t, before); err != nil {
		return r.fail(err)
	}
	tok, status, ok := r.start(ctx, c, t, token)
	if !ok {
		r.printf("  the mark stays set: the next rotation is the emergency rollover\n")
		return status
	}
	o := r.follow(ctx, c, t, before, tok, *timeout, p.limited)
	if status := r.conclude(ctx, c, t, o); status != ExitOK {
		r.printf("  do not abandon an emergency rollover: finish it (docs/runbook.md, Emergency rollover)\n")
		return status
	}
	after, _, err := readState(ctx, c, t.secretID)
	if err != nil || after.state.Current == nil {
		return r.fail(fmt.Errorf("read the secret after the rollover: %v", err))
	}
	return r.awaitKeySet(ctx, c, t, revoked, after.state.Current.Kid, began, *timeout)
}

// prepared is what rotate and emergency start from: the stack and the
// secret as read before they change anything.
type prepared struct {
	c       *clients
	t       *target
	before  snapshot
	limited bool
}

// prepareRotation resolves the stack and reads the secret (its labels and
// tags only when its values are denied, which it notes); nil, with the
// exit status, when it could not.
func (r *runner) prepareRotation(ctx context.Context) (*prepared, int) {
	c, err := r.clients(ctx)
	if err != nil {
		return nil, r.fail(err)
	}
	t, err := r.resolve(ctx, c, true)
	if err != nil {
		return nil, r.fail(err)
	}
	before, limited, err := readState(ctx, c, t.secretID)
	if err != nil {
		return nil, r.fail(fmt.Errorf("read the secret %s: %w", t.secretID, err))
	}
	if limited {
		r.printf("note: %s\n", limitedNote)
	}
	return &prepared{c: c, t: t, before: before, limited: limited}, 0
}

// stoppedEmergency looks at a rotation in progress: a stopped emergency
// rollover is finished under its token, never started again; a normal
// rotation is in the way. token is "" when none is in progress. s is the
// state the rollover's announcement describes: without the secret's
// values, an emergency mark and a rotation in progress mean a rollover
// stopped part-way (the records cannot be read to be sure).
func (r *runner) stoppedEmergency(t *target, before snapshot, s *lifecycle.State, limited bool) (token string, status int, ok bool) {
	pendingVersion := before.meta.Stages[store.StagePending]
	if pendingVersion == "" || pendingVersion == before.meta.Stages[store.StageCurrent] {
		return "", 0, true
	}
	if limited && lifecycle.EmergencyRequested(before.meta.Tags) {
		s.Pending = &keys.Record{Emergency: true}
	}
	if s.Pending == nil || !s.Pending.Emergency {
		r.printf("a rotation is in progress (AWSPENDING is on version %s): an emergency rollover cannot start beside it\n", pendingVersion)
		r.printf("  next: finish it (jwks-issuer rotate %s--token %s), then run jwks-issuer emergency again; "+
			"or abandon it: aws secretsmanager update-secret-version-stage --secret-id %s --version-stage AWSPENDING "+
			"--remove-from-version-id %s\n", stackFlag(t), pendingVersion, t.secretID, pendingVersion)
		return "", ExitProblem, false
	}
	r.printf("an emergency rollover is already in progress (version %s): finishing it\n", pendingVersion)
	return pendingVersion, 0, true
}

// revokedFor lists the kids the rollover revokes: those of s for a new
// one; for a stopped one (token set), those its pending record revokes,
// or the revocation tags when the record is not readable.
func revokedFor(s lifecycle.State, token string) []string {
	if token == "" {
		return revokedBy(s)
	}
	var revoked []string
	for _, k := range s.Pending.Revoked {
		revoked = append(revoked, k.JWK.Kid)
	}
	if len(revoked) == 0 {
		revoked = sortedKeys(s.Revoked) // from the revocation tags
	}
	return revoked
}

// announceEmergency says what the rollover does before it is confirmed.
func (r *runner) announceEmergency(t *target, s lifecycle.State, revoked []string) {
	r.printf("emergency rollover of %s\n", t.secretID)
	r.printf("  revokes %s: they leave the published key set at once and are never published again;\n", strings.Join(describeKids(s, revoked), ", "))
	r.printf("  every token they signed stops verifying as soon as verifiers refetch the key set;\n")
	r.printf("  signers keep signing with the revoked key for up to KEY_CACHE_SECONDS (%s) after the rollover.\n",
		human(t.cfg.Lifecycle.KeyCacheMaxAge))
}

// markEmergency sets the emergency mark, unless it is already set: the
// next rotation, which this command starts, is then the rollover.
func (r *runner) markEmergency(ctx context.Context, c *clients, t *target, before snapshot) error {
	if lifecycle.EmergencyRequested(before.meta.Tags) {
		return nil
	}
	_, err := c.sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(t.secretID),
		Tags: []types.Tag{{Key: aws.String(lifecycle.TagRollover), Value: aws.String(lifecycle.RolloverEmergency)}}})
	if err != nil {
		return fmt.Errorf("set the emergency mark (tag %s=%s): %w", lifecycle.TagRollover, lifecycle.RolloverEmergency, err)
	}
	r.printf("tagged %s=%s\n", lifecycle.TagRollover, lifecycle.RolloverEmergency)
	return nil
}

// confirm asks on stdin; only "yes" proceeds.
func (r *runner) confirm() bool {
	r.printf("type yes to proceed: ")
	line, err := bufio.NewReader(r.env.Stdin).ReadString('\n')
	if err != nil && line == "" {
		r.printf("\n")
		return false
	}
	return strings.EqualFold(strings.TrimSpace(line), "yes")
}

func describeKids(s lifecycle.State, kids []string) []string {
	var out []string
	for _, kid := range kids {
		role := ""
		switch {
		case s.Current != nil && s.Current.Kid == kid:
			role = "CURRENT"
		case s.Pending != nil && s.Pending.Kid == kid:
			role = "pending"
		case s.Next != nil && s.Next.Kid == kid:
			role = "NEXT"
		}
		if role != "" {
			kid += " (" + role + ")"
		}
		out = append(out, kid)
	}
	return out
}

// awaitKeySet polls the key set where verifiers fetch it (its URL, or the
// bucket when no URL is known) until the revoked kids are gone and fresh
// is there, and says how long that took.
func (r *runner) awaitKeySet(ctx context.Context, c *clients, t *target, revoked []string, fresh string, began time.Time, timeout time.Duration) int {
	where, read := r.keySetSource(ctx, c, t)
	start := r.now()
	deadline := start.Add(timeout)
	r.printf("waiting for %s to drop %s and list %s\n", where, strings.Join(revoked, ", "), fresh)
	if m := t.cfg.Lifecycle.JWKSMaxAge; m > 0 {
		r.printf("  caches keep a copy up to JWKS_MAX_AGE_SECONDS (%s); to hurry the CDN%s\n", human(m), invalidationHint(t))
	}
	lastNote := start
	for {
		set, err := read()
		if err == nil {
			still, present := listed(set, revoked), lists(set, fresh)
			if len(still) == 0 && present {
				r.printf("%s no longer lists %s and lists %s: %s after the key set check began, %s after the mark\n",
					where, strings.Join(revoked, ", "), fresh, human(r.now().Sub(start)), human(r.now().Sub(began)))
				r.printf("  ask verifier owners to refetch now; check the signer's log for \"signing key changed\"\n")
				return ExitOK
			}
			if r.now().Sub(lastNote) >= progressEvery {
				lastNote = r.now()
				r.printf("[%6s] still listed: %s; %s present: %v\n", human(r.now().Sub(start)), strings.Join(still, ", "), fresh, present)
			}
		}
		if r.now().After(deadline) {
			return r.keySetTimeout(t, where, start, err)
		}
		select {
		case <-ctx.Done():
			return r.fail(errors.New("interrupted while waiting for the key set"))
		case <-time.After(r.env.Poll):
		}
	}
}

// keySetSource is where verifiers fetch the key set, and how to read it
// there: its URL, or the bucket when no URL is known (which it notes).
func (r *runner) keySetSource(ctx context.Context, c *clients, t *target) (string, func() ([]keys.JWK, error)) {
	if where := t.jwksURL; where != "" {
		return where, func() ([]keys.JWK, error) {
			body, status, err := r.fetch(ctx, where)
			if err == nil && status != 200 {
				err = fmt.Errorf("HTTP %d", status)
			}
			if err != nil {
				return nil, err
			}
			set, err := keys.ParseSet(body)
			return set.Keys, err
		}
	}
	r.printf("no public URL of the key set is known (--jwks-url): checking the bucket instead\n")
	return "s3://" + t.cfg.Bucket + "/" + t.cfg.Key, func() ([]keys.JWK, error) {
		obj, err := s3store.NewObject(c.s3, t.cfg.Bucket, t.cfg.Key).Get(ctx)
		if err != nil {
			return nil, err
		}
		set, err := keys.ParseSet(obj.Body)
		return set.Keys, err
	}
}

// lists tells whether set holds kid.
func lists(set []keys.JWK, kid string) bool {
	return slices.ContainsFunc(set, func(k keys.JWK) bool { return k.Kid == kid })
}

// listed is those of kids that set holds, in the order of kids.
func listed(set []keys.JWK, kids []string) []string {
	var out []string
	for _, kid := range kids {
		if lists(set, kid) {
			out = append(out, kid)
		}
	}
	return out
}

// keySetTimeout says the key set did not show the rollover in time, and
// what to do.
func (r *runner) keySetTimeout(t *target, where string, start time.Time, lastErr error) int {
	r.printf("%s still does not show the rollover after %s", where, human(r.now().Sub(start)))
	if lastErr != nil {
		r.printf(" (last read: %v)", lastErr)
	}
	r.printf("\n  next: invalidate the CDN cache%s; jwks-issuer status %s\n", invalidationHint(t), strings.TrimSpace(stackFlag(t)))
	return ExitProblem
}
