package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"jwks-issuer/pkg/envconfig"
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/oidc"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/s3store"
)

// Check statuses.
const (
	statusOK      = "ok"
	statusInfo    = "info"
	statusProblem = "problem"
	statusUnknown = "unknown" // its input could not be read
)

// cleanupSlack is how long past its removal time a retired key may still be
// published before that counts as drift: the hourly cleanup removes it.
const cleanupSlack = time.Hour + 5*time.Minute

// report is what status prints: the same document as text or JSON.
type report struct {
	Stack      string       `json:"stack,omitempty"`
	Secret     string       `json:"secret"`
	At         time.Time    `json:"at"`
	Health     string       `json:"health"` // healthy, problem, unreadable
	ExitStatus int          `json:"exitStatus"`
	Keys       []keyRow     `json:"keys"`
	Checks     []check      `json:"checks"`
	Rotation   rotationInfo `json:"rotation"`
	Settings   []setting    `json:"settings"`
	Warnings   []string     `json:"warnings,omitempty"`
	// Limited: the secret's values could not be read, and the report is
	// what its labels, tags and the published documents tell.
	Limited bool `json:"limited,omitempty"`

	state     lifecycle.State
	readAt    time.Time // just before the secret was read
	timeline  []lifecycle.KeyTimeline
	published []keys.JWK // the S3 copy, when it parsed
}

// keyRow is one key of the table.
type keyRow struct {
	Kid       string `json:"kid"`
	Alg       string `json:"alg"`
	State     string `json:"state"`
	Label     string `json:"label,omitempty"`
	Custody   string `json:"custody"`
	KMSKeyID  string `json:"kmsKeyId,omitempty"`
	KMSState  string `json:"kmsState,omitempty"`
	Emergency bool   `json:"emergency,omitempty"`
	// The moments; null is not known, or not yet.
	Created         *time.Time `json:"created,omitempty"`
	FirstPublished  *time.Time `json:"firstPublished"`
	MayBePromotedAt *time.Time `json:"mayBePromotedAt,omitempty"`
	SigningSince    *time.Time `json:"signingSince"`
	RetiredAt       *time.Time `json:"retiredAt"`
	LeavesJWKSAfter *time.Time `json:"leavesJwksAfter"`
	// InKeySet: the secret says the key set holds it at this moment.
	InKeySet bool `json:"inKeySet"`
	// Published: the published copy (S3) holds it; null when it was not read.
	Published *bool `json:"published"`
}

// check is one health check.
type check struct {
	Name    string     `json:"name"`
	Status  string     `json:"status"`
	Summary string     `json:"summary"`
	Details []string   `json:"details,omitempty"`
	Next    string     `json:"next,omitempty"`
	At      *time.Time `json:"at,omitempty"`
	// Limited: this identity may not read the check's input; the check
	// says so and does not count against the health.
	Limited bool `json:"limited,omitempty"`
}

// rotationInfo is the secret's rotation configuration.
type rotationInfo struct {
	Enabled      bool       `json:"enabled"`
	Function     string     `json:"function,omitempty"`
	Schedule     string     `json:"schedule,omitempty"`
	LastRotated  *time.Time `json:"lastRotated,omitempty"`
	NextRotation *time.Time `json:"nextRotation,omitempty"`
	LogGroup     string     `json:"logGroup,omitempty"`
}

// gather reads the secret and everything published, and runs the checks.
func (r *runner) gather(ctx context.Context, c *clients, t *target) (*report, error) {
	readAt := r.now()
	snap, limited, err := readState(ctx, c, t.secretID)
	if err != nil {
		return nil, fmt.Errorf("read the secret %s: %w", t.secretID, err)
	}
	now := r.now()
	rep := &report{Stack: t.stack, Secret: t.secretID, At: now.UTC(), Settings: t.settings, Warnings: t.warnings,
		state: snap.state, readAt: readAt, Limited: limited}
	rep.timeline = lifecycle.Timeline(snap.state, t.cfg.Lifecycle, now)
	rep.Rotation = rotationOf(t)
	if limited {
		return r.gatherLimited(ctx, c, t, rep, snap, now), nil
	}

	want := lifecycle.KeySet(snap.state, t.cfg.Lifecycle, now)
	jwksCheck, storedSet := r.checkJWKS(ctx, c, t, rep, want, now)
	rep.Checks = append(rep.Checks, jwksCheck)
	if u := t.jwksURL; u != "" {
		rep.Checks = append(rep.Checks, r.checkURL(ctx, "jwks-url", u, keys.MarshalSet(want), storedSet, t.cfg.Lifecycle.JWKSMaxAge, t))
	}
	if !t.cfg.Issuer.IsZero() {
		doc := oidc.NewDiscovery(t.cfg.Issuer, t.cfg.JWKSURL, algorithms(want)).Marshal()
		discoveryCheck, storedDoc := r.checkDiscovery(ctx, c, t, doc)
		rep.Checks = append(rep.Checks, discoveryCheck)
		rep.Checks = append(rep.Checks, r.checkURL(ctx, "discovery-url",
			t.cfg.Issuer.String()+"/"+oidc.DiscoveryName, doc, storedDoc, t.cfg.Lifecycle.JWKSMaxAge, t))
	}
	rep.Checks = append(rep.Checks, checkPending(snap, t), checkEmergency(snap, t))
	promotion := checkPromotion(snap.state, t, now)
	rep.Checks = append(rep.Checks, promotion, checkSchedule(snap.state, t, rep.Rotation, promotion, now))
	kmsStates := map[string]string{}
	if k, ok := r.checkKMS(ctx, c, snap.state, t, rep.timeline, now, kmsStates); ok {
		rep.Checks = append(rep.Checks, k)
	}
	if p, ok := r.checkParameter(ctx, c, t, rep); ok {
		rep.Checks = append(rep.Checks, p)
	}
	rep.Keys = rows(rep.timeline, rep.published, kmsStates, t.cfg.Custody)
	rep.settle()
	return rep, nil
}

// settle sets the report's health from its checks: a problem beats a
// check that could not read its input.
func (rep *report) settle() {
	rep.Health, rep.ExitStatus = "healthy", ExitOK
	for _, c := range rep.Checks {
		switch c.Status {
		case statusProblem:
			rep.Health, rep.ExitStatus = "problem", ExitProblem
		case statusUnknown:
			if rep.ExitStatus == ExitOK {
				rep.Health, rep.ExitStatus = "unreadable", ExitUnreadable
			}
		}
	}
}

func rotationOf(t *target) rotationInfo {
	info := rotationInfo{Function: t.rotator, LogGroup: t.logGroup}
	d := t.secret
	if d == nil {
		return info
	}
	info.Enabled = aws.ToBool(d.RotationEnabled)
	if d.RotationRules != nil {
		switch {
		case aws.ToString(d.RotationRules.ScheduleExpression) != "":
			info.Schedule = aws.ToString(d.RotationRules.ScheduleExpression)
		case aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) > 0:
			n := aws.ToInt64(d.RotationRules.AutomaticallyAfterDays)
			info.Schedule = fmt.Sprintf("rate(%d days)", n)
			if n == 1 {
				info.Schedule = "rate(1 day)"
			}
		}
	}
	info.LastRotated = utc(aws.ToTime(d.LastRotatedDate))
	info.NextRotation = utc(aws.ToTime(d.NextRotationDate))
	return info
}

// rows is the key table: the timeline with custody, KMS states and what the
// published copy holds. A key with a KMS key is in KMS custody whatever the
// stack's custody is now (it was made under KMS custody); any other key's
// private half is in the secret, and, under Parameter Store custody, the
// signing key's also in the parameter: such keys carry the stack's custody.
func rows(tl []lifecycle.KeyTimeline, published []keys.JWK, kmsStates map[string]string, custody envconfig.Custody) []keyRow {
	inSecret := string(envconfig.CustodySecretsManager)
	if custody == envconfig.CustodyParameterStore {
		inSecret = string(envconfig.CustodyParameterStore)
	}
	var out []keyRow
	for _, k := range tl {
		row := keyRow{Kid: k.Kid, Alg: k.Alg, State: string(k.Role), Label: k.Label, Custody: inSecret,
			KMSKeyID: k.KMSKeyID, Emergency: k.Emergency, Created: utc(k.Created), FirstPublished: utc(k.Published),
			MayBePromotedAt: utc(k.Promotable), SigningSince: utc(k.SigningSince), RetiredAt: utc(k.Retired),
			LeavesJWKSAfter: utc(k.Removal), InKeySet: k.InKeySet}
		if k.KMSKeyID != "" {
			row.Custody, row.KMSState = "kms", kmsStates[k.KMSKeyID]
		}
		if published != nil {
			in := slices.ContainsFunc(published, func(j keys.JWK) bool { return j.Kid == k.Kid })
			row.Published = &in
		}
		out = append(out, row)
	}
	return out
}

// checkJWKS compares the stored key set with the one the secret calls for.
func (r *runner) checkJWKS(ctx context.Context, c *clients, t *target, rep *report, want []keys.JWK, now time.Time) (check, []byte) {
	ck := check{Name: "jwks"}
	if !t.bucketKnown {
		ck.Status, ck.Summary = statusUnknown, "the bucket is not known"
		ck.Next = "pass --stack NAME or --bucket BUCKET (the rotator's JWKS_BUCKET)"
		return ck, nil
	}
	where := "s3://" + t.cfg.Bucket + "/" + t.cfg.Key
	obj, err := s3store.NewObject(c.s3, t.cfg.Bucket, t.cfg.Key).Get(ctx)
	if errors.Is(err, store.ErrNotFound) {
		ck.Status = statusProblem
		ck.Summary = fmt.Sprintf("drift: %s is missing; verifiers cannot fetch the key set", where)
		ck.Next = republishHint(t)
		rep.published = []keys.JWK{}
		return ck, nil
	}
	if err != nil {
		ck.Status, ck.Summary, ck.Next = statusUnknown, fmt.Sprintf("could not read %s: %v", where, err), hintFor(err)
		return ck, nil
	}
	wantBody := keys.MarshalSet(want)
	cacheControl := fmt.Sprintf("public, max-age=%d", int64(t.cfg.Lifecycle.JWKSMaxAge/time.Second))
	set, perr := keys.ParseSet(obj.Body)
	if perr == nil {
		rep.published = set.Keys
	}
	var problems, notices []string
	switch {
	case string(obj.Body) == string(wantBody):
	case perr != nil:
		problems = append(problems, fmt.Sprintf("the object does not parse as a key set: %v", perr))
	default:
		problems, notices = diffSets(want, set.Keys, rep.timeline, now)
	}
	if obj.CacheControl != cacheControl {
		problems = append(problems, fmt.Sprintf("Cache-Control is %q, the rotator writes %q", obj.CacheControl, cacheControl))
	}
	if obj.ContentType != "application/json" {
		problems = append(problems, fmt.Sprintf("Content-Type is %q, the rotator writes \"application/json\"", obj.ContentType))
	}
	ck.Details = append(problems, notices...)
	switch {
	case len(problems) > 0:
		ck.Status = statusProblem
		ck.Summary = fmt.Sprintf("drift: %s differs from what the secret calls for (%s)", where, describeSet(want))
		ck.Next = republishHint(t)
	case len(notices) > 0:
		ck.Status = statusInfo
		ck.Summary = fmt.Sprintf("%s holds %s, and keys the next publish removes", where, describeSet(want))
		ck.Next = "nothing: the hourly cleanup removes them; " + republishHint(t) + " to do it now"
	default:
		ck.Status, ck.Summary = statusOK, fmt.Sprintf("%s holds %s, as the secret calls for", where, describeSet(want))
	}
	return ck, obj.Body
}

// diffSets explains how got differs from want. problems are drift;
// notices are retired keys past retention that the next publish drops.
func diffSets(want, got []keys.JWK, tl []lifecycle.KeyTimeline, now time.Time) (problems, notices []string) {
	role := map[string]lifecycle.KeyTimeline{}
	for _, k := range tl {
		role[k.Kid] = k
	}
	gotBy := map[string]keys.JWK{}
	for _, k := range got {
		gotBy[k.Kid] = k
	}
	wantBy := map[string]keys.JWK{}
	for _, k := range want {
		wantBy[k.Kid] = k
		g, ok := gotBy[k.Kid]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %s (%s): tokens it signs or signed are rejected", k.Kid, role[k.Kid].Role))
		case g != k:
			problems = append(problems, fmt.Sprintf("%s is published with other key material than the secret holds", k.Kid))
		}
	}
	for _, k := range got {
		if _, ok := wantBy[k.Kid]; ok {
			continue
		}
		tk, known := role[k.Kid]
		switch {
		case !known:
			problems = append(problems, fmt.Sprintf("extra %s: not a key the secret knows", k.Kid))
		case tk.Role == lifecycle.RoleRevoked:
			problems = append(problems, fmt.Sprintf("extra %s: REVOKED at %s, still published", k.Kid, stamp(tk.Retired)))
		case tk.Role == lifecycle.RoleRetired && !tk.Removal.IsZero() && now.Sub(tk.Removal) <= cleanupSlack:
			notices = append(notices, fmt.Sprintf("%s (RETIRED) is due to leave: its retention ended %s ago, at %s",
				k.Kid, human(now.Sub(tk.Removal)), stamp(tk.Removal)))
		default:
			problems = append(problems, fmt.Sprintf("extra %s (%s): its retention ended at %s, more than the hourly cleanup ago",
				k.Kid, tk.Role, stamp(tk.Removal)))
		}
	}
	if len(problems) == 0 && len(notices) == 0 {
		problems = append(problems, fmt.Sprintf("the keys are in another order or encoding: published %s, the secret calls for %s",
			kidList(got), kidList(want)))
	}
	return problems, notices
}

// checkDiscovery compares the stored discovery document with the one the
// rotator writes.
func (r *runner) checkDiscovery(ctx context.Context, c *clients, t *target, want []byte) (check, []byte) {
	ck := check{Name: "discovery"}
	if !t.bucketKnown {
		ck.Status, ck.Summary = statusUnknown, "the bucket is not known"
		return ck, nil
	}
	where := "s3://" + t.cfg.Bucket + "/" + t.cfg.DiscoveryKey
	obj, err := s3store.NewObject(c.s3, t.cfg.Bucket, t.cfg.DiscoveryKey).Get(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		ck.Status, ck.Summary, ck.Next = statusProblem, "drift: "+where+" is missing; verifiers cannot discover the issuer", republishHint(t)
	case err != nil:
		ck.Status, ck.Summary, ck.Next = statusUnknown, fmt.Sprintf("could not read %s: %v", where, err), hintFor(err)
	case string(obj.Body) != string(want):
		ck.Status, ck.Summary, ck.Next = statusProblem, "drift: "+where+" differs from the document the secret calls for", republishHint(t)
		ck.Details = []string{"published: " + string(obj.Body), "expected:  " + string(want)}
	default:
		ck.Status, ck.Summary = statusOK, where+" names "+t.cfg.Issuer.String()+" and "+t.cfg.JWKSURL
	}
	if err != nil {
		return ck, nil
	}
	return ck, obj.Body
}

// checkURL fetches a published document over HTTP, as verifiers do, and
// compares it with the one the secret calls for, and with the bucket's
// copy (stored; nil when it was not read), whose check reports its content.
func (r *runner) checkURL(ctx context.Context, name, url string, want, stored []byte, maxAge time.Duration, t *target) check {
	ck := check{Name: name}
	body, status, err := r.fetch(ctx, url)
	switch {
	case err == nil && status == http.StatusOK && stored != nil && string(body) == string(stored) && string(body) != string(want):
		ck.Status, ck.Summary = statusOK, url+" serves the bucket's copy (its check above says how that differs)"
	case err != nil:
		ck.Status, ck.Summary = statusUnknown, fmt.Sprintf("could not fetch %s: %v", url, err)
		ck.Next = "check the URL (--jwks-url, --issuer) and your network"
	case status != http.StatusOK:
		ck.Status, ck.Summary = statusProblem, fmt.Sprintf("%s answers HTTP %d", url, status)
		ck.Next = republishHint(t) + "; then invalidate the CDN cache" + invalidationHint(t)
	case string(body) == string(want):
		ck.Status, ck.Summary = statusOK, url+" serves the same document"
	case maxAge > 0:
		ck.Status = statusInfo
		ck.Summary = fmt.Sprintf("%s serves another copy: caches keep one up to JWKS_MAX_AGE_SECONDS (%s)", url, human(maxAge))
		ck.Details = []string{"served:   " + oneLine(body), "expected: " + string(want)}
		ck.Next = "if it lasts longer than that, invalidate the CDN cache" + invalidationHint(t)
	default:
		ck.Status, ck.Summary = statusProblem, "drift: "+url+" serves another copy"
		ck.Details = []string{"served:   " + oneLine(body), "expected: " + string(want)}
		ck.Next = "invalidate the CDN cache" + invalidationHint(t)
	}
	return ck
}

// fetch GETs url with the run's HTTP client.
func (r *runner) fetch(ctx context.Context, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := r.env.HTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return body, resp.StatusCode, err
}

func checkPending(snap snapshot, t *target) check {
	ck := check{Name: "pending"}
	current, pending := snap.meta.Stages[store.StageCurrent], snap.meta.Stages[store.StagePending]
	if pending == "" || pending == current {
		ck.Status, ck.Summary = statusOK, "no rotation in progress (AWSPENDING is on no other version than AWSCURRENT)"
		return ck
	}
	ck.Status = statusProblem
	finish := fmt.Sprintf("finish it: jwks-issuer rotate %s--token %s", stackFlag(t), pending)
	if p := snap.state.Pending; p != nil {
		kind := "a rotation"
		if p.Emergency {
			kind = "an emergency rollover"
		}
		ck.Summary = fmt.Sprintf("%s is in progress or stopped: AWSPENDING is on version %s (pending key %s)", kind, pending, p.Kid)
		if p.Emergency {
			ck.Next = finish + " (do not abandon an emergency rollover: docs/runbook.md, Emergency rollover)"
		} else {
			ck.Next = finish + fmt.Sprintf("; or abandon it: aws secretsmanager update-secret-version-stage --secret-id %s "+
				"--version-stage AWSPENDING --remove-from-version-id %s", t.secretID, pending)
		}
		return ck
	}
	ck.Summary = fmt.Sprintf("a rotation was started (AWSPENDING on version %s) and its createSecret has not written the pending record", pending)
	if snap.limited {
		ck.Summary = fmt.Sprintf("a rotation is in progress or stopped: AWSPENDING is on version %s (its record is not readable)", pending)
	}
	ck.Next = "if it is running, wait and look again; if it failed, read the rotator's log (" + first(t.logGroup, "its log group") +
		"), then " + finish
	return ck
}

func checkEmergency(snap snapshot, t *target) check {
	ck := check{Name: "emergency"}
	tags := snap.meta.Tags
	v, marked := tags[lifecycle.TagRollover]
	switch {
	case lifecycle.EmergencyRequested(tags) && snap.state.Pending != nil && snap.state.Pending.Emergency:
		ck.Status = statusProblem
		ck.Summary = "an emergency rollover is in progress: the revoked keys are out of the key set, and the fresh key " +
			snap.state.Pending.Kid + " does not sign yet"
		ck.Next = fmt.Sprintf("finish it: jwks-issuer rotate %s--token %s", stackFlag(t), snap.meta.Stages[store.StagePending])
	case lifecycle.EmergencyRequested(tags):
		ck.Status = statusProblem
		ck.Summary = "an emergency rollover is requested (tag " + lifecycle.TagRollover + "=emergency) and not carried out: " +
			"the next rotation revokes CURRENT and NEXT"
		ck.Next = fmt.Sprintf("run it now: jwks-issuer emergency %s; or, if the mark is a mistake: "+
			"aws secretsmanager untag-resource --secret-id %s --tag-keys %s", strings.TrimSpace(stackFlag(t)), t.secretID, lifecycle.TagRollover)
	case marked:
		ck.Status = statusInfo
		ck.Summary = fmt.Sprintf("tag %s is %q, which asks for nothing (only %q does)", lifecycle.TagRollover, v, lifecycle.RolloverEmergency)
	case len(snap.state.Revoked) > 0:
		ck.Status = statusProblem
		ck.Summary = fmt.Sprintf("revocations are tagged but not carried by AWSCURRENT's record: %s", strings.Join(sortedKeys(snap.state.Revoked), ", "))
		ck.Next = "an emergency rollover stopped part-way: finish it (docs/runbook.md, Emergency rollover)"
	default:
		ck.Status, ck.Summary = statusOK, "no emergency rollover requested"
	}
	return ck
}

func checkPromotion(s lifecycle.State, t *target, now time.Time) check {
	ck := check{Name: "promotion"}
	if s.Current == nil {
		ck.Status, ck.Summary = statusProblem, "the secret holds no signing key yet: the signer answers \"no signing key yet\""
		ck.Next = "run its first rotation: jwks-issuer rotate " + strings.TrimSpace(stackFlag(t))
		return ck
	}
	err := lifecycle.CheckPromotion(s, t.cfg.Lifecycle, now)
	var refused *lifecycle.PromotionRefused
	switch {
	case err == nil:
		ck.Status = statusOK
		ck.Summary = fmt.Sprintf("NEXT %s may be promoted now", s.Next.Kid)
		if at, ok := s.PublishedAt(s.Next); ok {
			ck.Summary += fmt.Sprintf(" (published %s ago, at %s)", human(now.Sub(at)), stamp(at))
		}
	case !errors.As(err, &refused):
		ck.Status, ck.Summary = statusProblem, err.Error()
	case refused.Kid == "":
		ck.Status, ck.Summary = statusProblem, "there is no usable NEXT key (missing or revoked): the next rotation makes one and is refused"
		ck.Next = "rotate once to make and publish it; rotation may proceed ACTIVATION_GRACE_SECONDS after"
	case refused.PublishedAt.IsZero():
		ck.Status, ck.Summary = statusProblem, fmt.Sprintf("NEXT %s has never been published: the next rotation publishes it and is refused", refused.Kid)
		ck.Next = "republish now, so that its activation grace starts: " + republishHint(t)
	default:
		ck.Status = statusInfo
		ck.Summary = fmt.Sprintf("NEXT %s may be promoted in %s (at %s; published at %s, plus ACTIVATION_GRACE_SECONDS %s)",
			refused.Kid, human(refused.NotBefore.Sub(now)), stamp(refused.NotBefore), stamp(refused.PublishedAt),
			human(t.cfg.Lifecycle.ActivationGrace))
		ck.At = utc(refused.NotBefore)
	}
	return ck
}

func checkSchedule(s lifecycle.State, t *target, rot rotationInfo, promotion check, now time.Time) check {
	ck := check{Name: "schedule"}
	if t.secret == nil {
		ck.Status, ck.Summary = statusUnknown, "the secret could not be described"
		return ck
	}
	if !rot.Enabled {
		ck.Status = statusProblem
		ck.Summary = "rotation is not enabled on the secret: the rotator refuses every step"
		ck.Next = fmt.Sprintf("turn it back on: aws secretsmanager rotate-secret --secret-id %s --rotation-lambda-arn %s "+
			"--rotation-rules 'ScheduleExpression=rate(30 days)' (or redeploy the stack)", t.secretID, first(t.rotator, "ROTATOR_ARN"))
		return ck
	}
	next := rot.NextRotation
	if next == nil {
		since := s.CurrentSince
		if since.IsZero() && rot.LastRotated != nil {
			since = *rot.LastRotated
		}
		if p, ok := ratePeriod(rot.Schedule); ok && !since.IsZero() {
			next = utc(since.Add(p))
		}
	}
	if next == nil {
		ck.Status, ck.Summary = statusInfo, fmt.Sprintf("rotation is enabled (%s); the next rotation time is not known", first(rot.Schedule, "no schedule"))
		return ck
	}
	who := "CURRENT"
	if s.Current != nil {
		who += " " + s.Current.Kid
	}
	ck.At = next
	if d := next.Sub(now); d >= 0 {
		ck.Status = statusOK
		ck.Summary = fmt.Sprintf("%s reaches the rotation schedule (%s) in %s, at %s", who, first(rot.Schedule, "?"), human(d), stamp(*next))
		if promotion.At != nil && promotion.At.After(*next) {
			ck.Status = statusInfo
			ck.Details = []string{"that rotation would be refused: NEXT may be promoted only at " + stamp(*promotion.At) +
				" (keep the schedule well above ACTIVATION_GRACE_SECONDS)"}
		}
		return ck
	}
	if now.Sub(*next) > 24*time.Hour {
		ck.Status = statusProblem
		ck.Summary = fmt.Sprintf("the scheduled rotation was due %s ago (at %s, %s)", human(now.Sub(*next)), stamp(*next), first(rot.Schedule, "?"))
		ck.Next = "read the rotator's log for \"rotation step failed\"" + logsHint(t) + "; then jwks-issuer rotate"
		return ck
	}
	ck.Status = statusOK
	ck.Summary = fmt.Sprintf("%s reached the rotation schedule (%s) %s ago; Secrets Manager rotates within its window", who, first(rot.Schedule, "?"), human(now.Sub(*next)))
	return ck
}

// checkKMS reads the state of every KMS key the timeline names; ok is
// false when no key is in KMS custody.
func (r *runner) checkKMS(ctx context.Context, c *clients, s lifecycle.State, t *target, tl []lifecycle.KeyTimeline,
	now time.Time, states map[string]string) (check, bool) {
	live, revoked, _ := lifecycle.ExternalKeys(s, t.cfg.Lifecycle, now)
	ck := check{Name: "kms", Status: statusOK}
	var problems, unknown int
	for _, k := range tl {
		if k.KMSKeyID == "" {
			continue
		}
		info, err := c.kms.DescribeKey(ctx, store.BareKeyID(k.KMSKeyID))
		state := info.State
		switch {
		case errors.Is(err, store.ErrKeyNotFound):
			state = "not found"
		case err != nil:
			unknown++
			ck.Details = append(ck.Details, fmt.Sprintf("%s (%s): could not describe %s: %v", k.Kid, k.Role, k.KMSKeyID, err))
			continue
		}
		states[k.KMSKeyID] = state
		isLive, isRevoked := slices.Contains(live, k.KMSKeyID), slices.Contains(revoked, k.KMSKeyID)
		line := fmt.Sprintf("%s (%s): %s is %s", k.Kid, k.Role, k.KMSKeyID, state)
		switch {
		case isLive && state != store.KeyEnabled:
			problems++
			line += ": it must be Enabled while the key signs or its tokens may be alive"
		case isRevoked && state == store.KeyEnabled:
			problems++
			line += ": a revoked key's KMS key must be disabled (the next cleanup does it)"
		case !isLive && !isRevoked && state == store.KeyEnabled:
			line += ": no longer needed; the next cleanup schedules its deletion"
		}
		ck.Details = append(ck.Details, line)
	}
	if len(ck.Details) == 0 {
		return check{}, false
	}
	switch {
	case problems > 0:
		ck.Status, ck.Summary = statusProblem, fmt.Sprintf("%d KMS key(s) in the wrong state", problems)
		ck.Next = republishHint(t) + " (cleanup disables revoked keys and deletes dropped ones)"
	case unknown > 0:
		ck.Status, ck.Summary = statusUnknown, "could not describe every KMS key"
		ck.Next = "your identity needs kms:DescribeKey on the stack's keys"
	default:
		ck.Summary = "every KMS key is in the state its key calls for"
	}
	return ck, true
}

// ratePeriod reads rate(N days) and rate(N hours).
func ratePeriod(expr string) (time.Duration, bool) {
	var n int
	var unit string
	if _, err := fmt.Sscanf(strings.TrimSpace(expr), "rate(%d %s", &n, &unit); err != nil || n <= 0 {
		return 0, false
	}
	switch strings.TrimSuffix(unit, ")") {
	case "day", "days":
		return time.Duration(n) * 24 * time.Hour, true
	case "hour", "hours":
		return time.Duration(n) * time.Hour, true
	}
	return 0, false
}

func republishHint(t *target) string {
	fn := first(t.rotator, "ROTATOR")
	return fmt.Sprintf("republish from the secret: aws lambda invoke --function-name %s --payload '{\"action\":\"cleanup\"}' "+
		"--cli-binary-format raw-in-base64-out /dev/stdout", fn)
}

func invalidationHint(t *target) string {
	id := first(t.distID, "DISTRIBUTION_ID")
	return fmt.Sprintf(": aws cloudfront create-invalidation --distribution-id %s --paths '/%s'", id, t.cfg.Key)
}

func logsHint(t *target) string {
	if t.logGroup == "" {
		return ""
	}
	return fmt.Sprintf(" (aws logs tail %s --since 1d --filter-pattern '\"rotation step failed\"')", t.logGroup)
}

// stackFlag repeats how the stack was named, for a command to run next.
func stackFlag(t *target) string {
	if t.stack != "" {
		return "--stack " + t.stack + " "
	}
	return "--secret " + t.secretID + " "
}

func describeSet(ks []keys.JWK) string {
	if len(ks) == 1 {
		return "1 key"
	}
	return fmt.Sprintf("%d keys", len(ks))
}

func kidList(ks []keys.JWK) string {
	var kids []string
	for _, k := range ks {
		kids = append(kids, k.Kid)
	}
	return "[" + strings.Join(kids, " ") + "]"
}

func algorithms(set []keys.JWK) []string {
	out := make([]string, len(set))
	for i, k := range set {
		out[i] = k.Alg
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func oneLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// gatherLimited is the report when the secret's values may not be read:
// CURRENT and NEXT come from the tags, the other published keys are listed
// without their times, and the key set is checked for what can be known
// (CURRENT and NEXT are there, no revoked kid is, the headers).
func (r *runner) gatherLimited(ctx context.Context, c *clients, t *target, rep *report, snap snapshot, now time.Time) *report {
	rep.Warnings = append(rep.Warnings, limitedNote)
	ck := check{Name: "jwks"}
	var stored []byte
	where := "s3://" + t.cfg.Bucket + "/" + t.cfg.Key
	obj, err := s3store.NewObject(c.s3, t.cfg.Bucket, t.cfg.Key).Get(ctx)
	switch {
	case !t.bucketKnown:
		ck.Status, ck.Summary, ck.Next = statusUnknown, "the bucket is not known", "pass --stack NAME or --bucket BUCKET"
	case errors.Is(err, store.ErrNotFound):
		ck.Status, ck.Summary, ck.Next = statusProblem, "drift: "+where+" is missing; verifiers cannot fetch the key set", republishHint(t)
		rep.published = []keys.JWK{}
	case err != nil:
		ck.Status, ck.Summary, ck.Next = statusUnknown, fmt.Sprintf("could not read %s: %v", where, err), hintFor(err)
	default:
		stored = obj.Body
		ck = r.limitedKeySet(t, rep, obj, where)
	}
	rep.Checks = append(rep.Checks, ck)
	if u := t.jwksURL; u != "" && stored != nil {
		rep.Checks = append(rep.Checks, r.checkURL(ctx, "jwks-url", u, stored, stored, t.cfg.Lifecycle.JWKSMaxAge, t))
	}
	if !t.cfg.Issuer.IsZero() && rep.published != nil {
		doc := oidc.NewDiscovery(t.cfg.Issuer, t.cfg.JWKSURL, algorithms(rep.published)).Marshal()
		discoveryCheck, storedDoc := r.checkDiscovery(ctx, c, t, doc)
		rep.Checks = append(rep.Checks, discoveryCheck, r.checkURL(ctx, "discovery-url",
			t.cfg.Issuer.String()+"/"+oidc.DiscoveryName, doc, storedDoc, t.cfg.Lifecycle.JWKSMaxAge, t))
	}
	rep.Checks = append(rep.Checks, checkPending(snap, t), checkEmergency(snap, t))
	promotion := checkPromotion(snap.state, t, now)
	rep.Checks = append(rep.Checks, promotion, checkSchedule(snap.state, t, rep.Rotation, promotion, now))
	if p, ok := r.checkParameter(ctx, c, t, rep); ok {
		rep.Checks = append(rep.Checks, p)
	}
	rep.Checks = append(rep.Checks,
		check{Name: "records", Status: statusInfo,
			Summary: "the secret's values are not readable by this identity: retired keys' times, custody and KMS states are not shown",
			Next:    "run as the break-glass role for the full report (docs/runbook.md, Acting as the break-glass role)"})
	rep.Keys = rows(rep.timeline, rep.published, nil, t.cfg.Custody)
	for i := range rep.Keys {
		rep.Keys[i].Custody = "unknown"
	}
	rep.settle()
	return rep
}

// limitedKeySet checks the stored key set against what the tags tell, and
// adds its other keys to the timeline as RETIRED, times unknown.
func (r *runner) limitedKeySet(t *target, rep *report, obj store.Object, where string) check {
	ck := check{Name: "jwks"}
	set, err := keys.ParseSet(obj.Body)
	if err != nil {
		ck.Status, ck.Summary, ck.Next = statusProblem, fmt.Sprintf("drift: %s does not parse as a key set: %v", where, err), republishHint(t)
		return ck
	}
	rep.published = set.Keys
	var problems []string
	known := map[string]bool{}
	for i := range rep.timeline {
		k := &rep.timeline[i]
		known[k.Kid] = true
		j, in := set.Find(k.Kid)
		k.InKeySet = in && k.Role != lifecycle.RoleRevoked
		if in {
			k.Alg = j.Alg
		}
		switch {
		case k.Role == lifecycle.RoleRevoked && in:
			problems = append(problems, fmt.Sprintf("extra %s: REVOKED at %s, still published", k.Kid, stamp(k.Retired)))
		case k.Role != lifecycle.RoleRevoked && !in:
			problems = append(problems, fmt.Sprintf("missing %s (%s): tokens it signs or signed are rejected", k.Kid, k.Role))
		}
	}
	var others []string
	for _, j := range set.Keys {
		if !known[j.Kid] {
			others = append(others, j.Kid)
			rep.timeline = append(rep.timeline, lifecycle.KeyTimeline{Kid: j.Kid, Alg: j.Alg, Role: lifecycle.RoleRetired, InKeySet: true})
		}
	}
	cacheControl := fmt.Sprintf("public, max-age=%d", int64(t.cfg.Lifecycle.JWKSMaxAge/time.Second))
	if obj.CacheControl != cacheControl {
		problems = append(problems, fmt.Sprintf("Cache-Control is %q, the rotator writes %q", obj.CacheControl, cacheControl))
	}
	if obj.ContentType != "application/json" {
		problems = append(problems, fmt.Sprintf("Content-Type is %q, the rotator writes \"application/json\"", obj.ContentType))
	}
	ck.Details = problems
	if len(others) > 0 {
		ck.Details = append(ck.Details, fmt.Sprintf("%s: neither CURRENT nor NEXT; whether each is inside its retention "+
			"needs the records", strings.Join(others, ", ")))
	}
	if len(problems) > 0 {
		ck.Status, ck.Summary, ck.Next = statusProblem, "drift: "+where+" lacks what the secret's labels and tags call for", republishHint(t)
		return ck
	}
	ck.Status = statusOK
	ck.Summary = fmt.Sprintf("%s holds CURRENT and NEXT, and %d other key(s)", where, len(others))
	return ck
}
