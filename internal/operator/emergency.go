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
	c, err := r.clients(ctx)
	if err != nil {
		return r.fail(err)
	}
	t, err := r.resolve(ctx, c, true)
	if err != nil {
		return r.fail(err)
	}
	before, limited, err := readState(ctx, c, t.secretID)
	if err != nil {
		return r.fail(fmt.Errorf("read the secret %s: %w", t.secretID, err))
	}
	if limited {
		r.printf("note: %s\n", limitedNote)
	}
	s := before.state
	if s.Current == nil {
		r.printf("the secret holds no key yet: there is nothing to revoke; run its first rotation: jwks-issuer rotate %s\n",
			strings.TrimSpace(stackFlag(t)))
		return ExitProblem
	}
	if status, ok := r.checkEnabled(t, before); !ok {
		return status
	}
	// A stopped emergency rollover is finished, never started again; a
	// normal rotation in progress is in the way.
	token := ""
	pendingVersion := before.meta.Stages[store.StagePending]
	if pendingVersion != "" && pendingVersion != before.meta.Stages[store.StageCurrent] {
		if limited && lifecycle.EmergencyRequested(before.meta.Tags) {
			// An emergency mark and a rotation in progress: the rollover
			// stopped part-way (the records cannot be read to be sure).
			s.Pending = &keys.Record{Emergency: true}
		}
		if s.Pending == nil || !s.Pending.Emergency {
			r.printf("a rotation is in progress (AWSPENDING is on version %s): an emergency rollover cannot start beside it\n", pendingVersion)
			r.printf("  next: finish it (jwks-issuer rotate %s--token %s), then run jwks-issuer emergency again; "+
				"or abandon it: aws secretsmanager update-secret-version-stage --secret-id %s --version-stage AWSPENDING "+
				"--remove-from-version-id %s\n", stackFlag(t), pendingVersion, t.secretID, pendingVersion)
			return ExitProblem
		}
		token = pendingVersion
		r.printf("an emergency rollover is already in progress (version %s): finishing it\n", token)
	}
	revoked := revokedBy(s)
	if token != "" {
		revoked = nil
		for _, k := range s.Pending.Revoked {
			revoked = append(revoked, k.JWK.Kid)
		}
		if len(revoked) == 0 {
			revoked = sortedKeys(s.Revoked) // from the revocation tags
		}
	}
	r.printf("emergency rollover of %s\n", t.secretID)
	r.printf("  revokes %s: they leave the published key set at once and are never published again;\n", strings.Join(describeKids(s, revoked), ", "))
	r.printf("  every token they signed stops verifying as soon as verifiers refetch the key set;\n")
	r.printf("  signers keep signing with the revoked key for up to KEY_CACHE_SECONDS (%s) after the rollover.\n",
		human(t.cfg.Lifecycle.KeyCacheMaxAge))
	if !*yes && !r.confirm() {
		r.printf("not confirmed: nothing changed\n")
		return ExitProblem
	}
	began := r.now()
	if !lifecycle.EmergencyRequested(before.meta.Tags) {
		_, err := c.sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(t.secretID),
			Tags: []types.Tag{{Key: aws.String(lifecycle.TagRollover), Value: aws.String(lifecycle.RolloverEmergency)}}})
		if err != nil {
			return r.fail(fmt.Errorf("set the emergency mark (tag %s=%s): %w", lifecycle.TagRollover, lifecycle.RolloverEmergency, err))
		}
		r.printf("tagged %s=%s\n", lifecycle.TagRollover, lifecycle.RolloverEmergency)
	}
	tok, status, ok := r.start(ctx, c, t, token)
	if !ok {
		r.printf("  the mark stays set: the next rotation is the emergency rollover\n")
		return status
	}
	o := r.follow(ctx, c, t, before, tok, *timeout, limited)
	if status := r.conclude(ctx, c, t, o); status != ExitOK {
		r.printf("  do not abandon an emergency rollover: finish it (docs/runbook.md, Emergency rollover)\n")
		return status
	}
	after, _, err := readState(ctx, c, t.secretID)
	if err != nil || after.state.Current == nil {
		return r.fail(fmt.Errorf("read the secret after the rollover: %v", err))
	}
	fresh := after.state.Current.Kid
	return r.awaitKeySet(ctx, c, t, revoked, fresh, began, *timeout)
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
	where := t.jwksURL
	read := func() ([]keys.JWK, error) {
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
	if where == "" {
		where = "s3://" + t.cfg.Bucket + "/" + t.cfg.Key
		r.printf("no public URL of the key set is known (--jwks-url): checking the bucket instead\n")
		read = func() ([]keys.JWK, error) {
			obj, err := s3store.NewObject(c.s3, t.cfg.Bucket, t.cfg.Key).Get(ctx)
			if err != nil {
				return nil, err
			}
			set, err := keys.ParseSet(obj.Body)
			return set.Keys, err
		}
	}
	start := r.now()
	deadline := start.Add(timeout)
	r.printf("waiting for %s to drop %s and list %s\n", where, strings.Join(revoked, ", "), fresh)
	if m := t.cfg.Lifecycle.JWKSMaxAge; m > 0 {
		r.printf("  caches keep a copy up to JWKS_MAX_AGE_SECONDS (%s); to hurry the CDN%s\n", human(m), invalidationHint(t))
	}
	lastNote := start
	var lastErr error
	for {
		set, err := read()
		lastErr = err
		if err == nil {
			var still []string
			for _, kid := range revoked {
				if slices.ContainsFunc(set, func(k keys.JWK) bool { return k.Kid == kid }) {
					still = append(still, kid)
				}
			}
			present := slices.ContainsFunc(set, func(k keys.JWK) bool { return k.Kid == fresh })
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
			r.printf("%s still does not show the rollover after %s", where, human(r.now().Sub(start)))
			if lastErr != nil {
				r.printf(" (last read: %v)", lastErr)
			}
			r.printf("\n  next: invalidate the CDN cache%s; jwks-issuer status %s\n", invalidationHint(t), strings.TrimSpace(stackFlag(t)))
			return ExitProblem
		}
		select {
		case <-ctx.Done():
			return r.fail(errors.New("interrupted while waiting for the key set"))
		case <-time.After(r.env.Poll):
		}
	}
}
