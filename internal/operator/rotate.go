package operator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/rotation"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
)

// progressEvery is how often a long wait says it is still waiting.
const progressEvery = 10 * time.Second

// logDelay is how long a refusal's reason is looked for in the rotator's
// log after the refusal shows in the secret's labels.
const logDelay = 10 * time.Second

func runRotate(ctx context.Context, r *runner, args []string) int {
	fs := r.flags()
	noWait := fs.Bool("no-wait", false, "start the rotation and return")
	token := fs.String("token", "", "finish the rotation under this `ID` (the version AWSPENDING is on) instead of starting one")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to follow the rotation")
	if _, status, ok := r.parse(fs, args); !ok {
		return status
	}
	p, status := r.prepareRotation(ctx)
	if p == nil {
		return status
	}
	c, t, before, limited := p.c, p.t, p.before, p.limited
	r.describeKeys(before.state)
	if status, ok := r.checkStart(t, before, *token); !ok {
		return status
	}
	if !lifecycle.EmergencyRequested(before.meta.Tags) && before.state.Current != nil && *token == "" {
		var refused *lifecycle.PromotionRefused
		if err := lifecycle.CheckPromotion(before.state, t.cfg.Lifecycle, r.now()); errors.As(err, &refused) {
			r.printf("expect a refusal: %s\n", refused.Error())
		}
	} else if lifecycle.EmergencyRequested(before.meta.Tags) {
		r.printf("the emergency mark is set: this rotation is an emergency rollover\n")
	}
	tok, status, ok := r.start(ctx, c, t, *token)
	if !ok {
		return status
	}
	if *noWait {
		r.printf("not waiting; follow it with: jwks-issuer status %s\n", strings.TrimSpace(stackFlag(t)))
		return ExitOK
	}
	out := r.follow(ctx, c, t, before, tok, *timeout, limited)
	return r.conclude(ctx, c, t, out)
}

// describeKeys says which keys the rotation starts from.
func (r *runner) describeKeys(s lifecycle.State) {
	if s.Current == nil {
		r.printf("the secret holds no key yet: this is its first rotation\n")
		return
	}
	line := "CURRENT " + s.Current.Kid
	if s.Pending != nil {
		line += ", pending " + s.Pending.Kid
	}
	if s.Next != nil {
		line += ", NEXT " + s.Next.Kid
	}
	r.printf("%s\n", line)
}

// checkEnabled refuses to start a rotation that cannot run: the secret has
// no rotation function, or rotation is off (the rotator refuses every step
// then).
func (r *runner) checkEnabled(t *target, snap snapshot) (int, bool) {
	enable := fmt.Sprintf("aws secretsmanager rotate-secret --secret-id %s --rotation-lambda-arn %s "+
		"--rotation-rules 'ScheduleExpression=rate(30 days)' (or redeploy the stack)", t.secretID, first(t.rotator, "ROTATOR_ARN"))
	switch {
	case t.secret != nil && aws.ToString(t.secret.RotationLambdaARN) == "":
		r.printf("the secret has no rotation function: Secrets Manager has nothing to run\n")
		r.printf("  next: configure it: %s\n", enable)
		return ExitProblem, false
	case !snap.meta.RotationEnabled:
		r.printf("rotation is not enabled on the secret: the rotator would refuse every step\n")
		r.printf("  next: turn it back on: %s\n", enable)
		return ExitProblem, false
	}
	return 0, true
}

// checkStart refuses what checkEnabled refuses, a new rotation while
// another one holds AWSPENDING (Secrets Manager would refuse it too), and
// a --token that is not that rotation's.
func (r *runner) checkStart(t *target, snap snapshot, token string) (int, bool) {
	if status, ok := r.checkEnabled(t, snap); !ok {
		return status, false
	}
	current, pending := snap.meta.Stages[store.StageCurrent], snap.meta.Stages[store.StagePending]
	inProgress := pending != "" && pending != current
	switch {
	case token == "" && inProgress:
		r.printf("a rotation is already in progress: AWSPENDING is on version %s\n", pending)
		r.printf("  next: finish it: jwks-issuer rotate %s--token %s (docs/runbook.md, A failed rotation)\n", stackFlag(t), pending)
		return ExitProblem, false
	case token != "" && token != pending:
		r.printf("version %s is not the pending version of a rotation (AWSPENDING is on %q)\n", token, pending)
		if inProgress {
			r.printf("  next: finish that one: jwks-issuer rotate %s--token %s\n", stackFlag(t), pending)
		} else {
			r.printf("  next: start a new rotation: jwks-issuer rotate %s\n", strings.TrimSpace(stackFlag(t)))
		}
		return ExitProblem, false
	}
	return 0, true
}

// start calls RotateSecret under token, or under a new one.
func (r *runner) start(ctx context.Context, c *clients, t *target, token string) (string, int, bool) {
	tok := token
	if tok == "" {
		tok = newToken()
	}
	_, err := c.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(t.secretID), ClientRequestToken: aws.String(tok)})
	if err != nil {
		if apiCode(err) == "InvalidRequestException" {
			r.printf("Secrets Manager refused to start the rotation: %v\n", err)
			r.printf("  next: jwks-issuer status %s says what is in the way\n", strings.TrimSpace(stackFlag(t)))
			return "", ExitProblem, false
		}
		return "", r.fail(fmt.Errorf("start the rotation: %w", err)), false
	}
	verb := "started"
	if token != "" {
		verb = "resumed"
	}
	r.printf("%s rotation %s\n", verb, tok)
	r.started = r.now()
	return tok, 0, true
}

// outcome is how a rotation ended.
type outcome struct {
	token   string
	kind    string // done, refused, failed, timeout
	reason  string // the rotator's error, or what was still awaited
	step    string
	elapsed time.Duration
	after   *snapshot
}

// follow polls the secret until the rotation under tok is done, refused or
// failed, printing each change of its labels as it happens.
func (r *runner) follow(ctx context.Context, c *clients, t *target, before snapshot, tok string, timeout time.Duration, limited bool) outcome {
	f := &follower{r: r, ctx: ctx, before: before, tok: tok, limited: limited, secret: awsstore.NewSecrets(c.sm, t.secretID),
		logs: &logReader{c: c, group: t.logGroup, since: r.started.Add(-time.Minute)}, start: r.started,
		deadline: r.started.Add(timeout), lastNote: r.started}
	for polls := 0; ; polls++ {
		if o, ended := f.poll(); ended {
			return o
		}
		// A failed step leaves the labels as they were (Secrets Manager
		// retries it later), so only the rotator's log tells; it is read
		// every third poll, to keep the log queries few.
		if polls%3 == 2 {
			if o, ended := f.logged(); ended {
				return o
			}
		}
		if o, ended := f.wait(); ended {
			return o
		}
	}
}

// follower is one rotation being followed: what it has seen happen so far.
type follower struct {
	r       *runner
	ctx     context.Context
	before  snapshot
	tok     string
	limited bool
	secret  store.Secrets
	logs    *logReader

	start, deadline, lastNote time.Time
	// The steps seen, in the order the rotation takes them.
	wrote, newNext, moved bool
	// sawPending: AWSPENDING was on tok's version at least once.
	sawPending bool
}

// step prints one thing the rotation did, with the time since it started.
func (f *follower) step(format string, args ...any) {
	f.r.printf("[%6s] %s\n", human(f.r.now().Sub(f.start)), fmt.Sprintf(format, args...))
}

// end is the outcome kind with reason, now.
func (f *follower) end(kind, reason string) outcome {
	return outcome{token: f.tok, kind: kind, reason: reason, elapsed: f.r.now().Sub(f.start)}
}

// poll reads the labels once, prints what changed, and ends when they show
// the outcome.
func (f *follower) poll() (outcome, bool) {
	meta, err := f.secret.Describe(f.ctx)
	if err != nil {
		return f.end("failed", "could not describe the secret: "+err.Error()), true
	}
	pending := meta.Stages[store.StagePending] == f.tok
	current := meta.Stages[store.StageCurrent] == f.tok
	f.sawPending = f.sawPending || pending
	f.notePendingRecord(pending || current)
	f.noteNewNext(meta.Stages[store.StageNext])
	f.noteMoved(current)
	switch {
	case current && !pending:
		f.step("finishSecret done: AWSPENDING is off")
		return f.end("done", ""), true
	case !pending && !current && f.sawPending:
		return f.refused(), true
	}
	return outcome{}, false
}

// notePendingRecord says when createSecret has written tok's version.
func (f *follower) notePendingRecord(labelled bool) {
	if f.wrote || !labelled {
		return
	}
	if rec, _ := rotation.ReadRecord(f.ctx, f.secret, f.tok); rec != nil {
		f.wrote = true
		f.step("createSecret wrote the pending record: %s", pendingWhat(f.before.state, rec))
	}
}

// noteNewNext says when NEXT has moved to a new key. Without the secret's
// values the new version cannot be read, but the label moving says the
// same, and that the pending record was written before it.
func (f *follower) noteNewNext(nextVersion string) {
	if f.newNext || nextVersion == "" || nextVersion == f.before.meta.Stages[store.StageNext] {
		return
	}
	if rec, _ := rotation.ReadRecord(f.ctx, f.secret, nextVersion); rec != nil {
		f.newNext = true
		f.step("createSecret made the new NEXT key %s", rec.Kid)
	} else if f.limited {
		f.wrote, f.newNext = true, true
		f.step("createSecret wrote the pending record and moved NEXT to a new key (version %s)", nextVersion)
	}
}

// noteMoved says when AWSCURRENT has reached tok's version.
func (f *follower) noteMoved(current bool) {
	if !f.moved && current {
		f.moved = true
		f.step("testSecret passed and finishSecret moved AWSCURRENT: the new key signs (signers pick it up within KEY_CACHE_SECONDS/2)")
	}
}

// refused is the outcome of a rotation whose version lost AWSPENDING
// without reaching AWSCURRENT: the rotator refused it, and its log says
// why.
func (f *follower) refused() outcome {
	o := f.end("refused", "the rotator took AWSPENDING off its version without promoting it")
	// The log line may take a few seconds to reach CloudWatch Logs.
	for wait := f.r.now().Add(logDelay); ; {
		if fl, ok := f.logs.failure(f.ctx, f.tok); ok {
			o.reason, o.step = fl.err, fl.step
			break
		}
		if !f.logs.readable() || f.r.now().After(wait) || f.ctx.Err() != nil {
			break
		}
		time.Sleep(f.r.env.Poll)
	}
	return o
}

// logged ends with the failure the rotator logged for tok, if any: a step
// that failed with "rotation refused" is a refusal.
func (f *follower) logged() (outcome, bool) {
	fl, ok := f.logs.failure(f.ctx, f.tok)
	if !ok {
		return outcome{}, false
	}
	kind := "failed"
	if strings.Contains(fl.err, "rotation refused") {
		kind = "refused"
	}
	o := f.end(kind, fl.err)
	o.step = fl.step
	return o, true
}

// wait sleeps until the next poll, saying now and then what it waits for;
// it ends at the deadline or when the run is interrupted.
func (f *follower) wait() (outcome, bool) {
	awaited := awaiting(f.wrote, f.newNext, f.moved)
	if f.r.now().After(f.deadline) {
		return f.end("timeout", awaited), true
	}
	if f.r.now().Sub(f.lastNote) >= progressEvery {
		f.lastNote = f.r.now()
		f.step("waiting for %s", awaited)
	}
	select {
	case <-f.ctx.Done():
		return f.end("timeout", awaited+" (interrupted)"), true
	case <-time.After(f.r.env.Poll):
	}
	return outcome{}, false
}

func awaiting(wrote, newNext, moved bool) string {
	switch {
	case !wrote:
		return "createSecret to write the pending record"
	case !newNext:
		return "createSecret to make and publish the new NEXT key"
	case !moved:
		return "testSecret to check the key set and finishSecret to move AWSCURRENT"
	}
	return "finishSecret to take AWSPENDING off"
}

// pendingWhat says what a pending record does to the state it was made from.
func pendingWhat(before lifecycle.State, rec *keys.Record) string {
	switch {
	case rec.Emergency:
		var revoked []string
		for _, k := range rec.Revoked {
			revoked = append(revoked, k.JWK.Kid)
		}
		return fmt.Sprintf("fresh key %s (emergency); revoked and out of the key set: %s", rec.Kid, strings.Join(revoked, ", "))
	case before.Next != nil && before.Next.Kid == rec.Kid:
		return fmt.Sprintf("NEXT %s is promoted", rec.Kid)
	case before.Current == nil:
		return fmt.Sprintf("the first key %s", rec.Kid)
	}
	return "key " + rec.Kid
}

// conclude prints the outcome and returns the exit status.
func (r *runner) conclude(ctx context.Context, c *clients, t *target, o outcome) int {
	after, _, err := readState(ctx, c, t.secretID)
	if err == nil {
		o.after = &after
	}
	switch o.kind {
	case "done":
		r.printf("done in %s\n", human(o.elapsed))
		if o.after != nil {
			r.summarize(o.after.state, t)
		}
		return ExitOK
	case "refused":
		r.printf("refused after %s: %s\n", human(o.elapsed), o.reason)
		if o.after != nil {
			var refused *lifecycle.PromotionRefused
			if err := lifecycle.CheckPromotion(o.after.state, t.cfg.Lifecycle, r.now()); errors.As(err, &refused) && !refused.NotBefore.IsZero() {
				r.printf("  it may proceed at %s (in %s): run jwks-issuer rotate %sthen\n", stamp(refused.NotBefore),
					human(refused.NotBefore.Sub(r.now())), stackFlag(t))
			} else if err == nil {
				r.printf("  NEXT may be promoted now: run jwks-issuer rotate %sagain\n", stackFlag(t))
			}
		}
		return ExitProblem
	case "failed":
		where := ""
		if o.step != "" {
			where = " in " + o.step
		}
		r.printf("failed%s after %s: %s\n", where, human(o.elapsed), o.reason)
		r.printf("  next: fix the cause, then finish it: jwks-issuer rotate %s--token %s (docs/runbook.md, A failed rotation)\n", stackFlag(t), o.token)
		return ExitProblem
	}
	r.printf("no outcome after %s: still waiting for %s\n", human(o.elapsed), o.reason)
	r.printf("  next: jwks-issuer status %s says where it stands; the rotator's log%s says why\n",
		strings.TrimSpace(stackFlag(t)), logsHint(t))
	return ExitProblem
}

// summarize prints the keys after a rotation.
func (r *runner) summarize(s lifecycle.State, t *target) {
	for _, k := range lifecycle.Timeline(s, t.cfg.Lifecycle, r.now()) {
		switch k.Role {
		case lifecycle.RoleCurrent:
			r.printf("  CURRENT %s signs (since %s)\n", k.Kid, at(utc(k.SigningSince), "?"))
		case lifecycle.RoleNext:
			r.printf("  NEXT    %s may be promoted from %s\n", k.Kid, at(utc(k.Promotable), "its first publication + ACTIVATION_GRACE_SECONDS"))
		case lifecycle.RoleRetired:
			if k.InKeySet {
				r.printf("  RETIRED %s verifies until %s, then leaves the key set\n", k.Kid, at(utc(k.Removal), "its retirement is recorded"))
			}
		case lifecycle.RoleRevoked:
			r.printf("  REVOKED %s is out of the key set\n", k.Kid)
		}
	}
}

// logReader finds a rotation's failure in the rotator's log group.
type logReader struct {
	c     *clients
	group string
	since time.Time
	err   error // set once the log cannot be read; no more attempts
}

type stepFailure struct{ step, err string }

func (l *logReader) readable() bool { return l.group != "" && l.err == nil }

// failure returns the first "rotation step failed" line of tok.
func (l *logReader) failure(ctx context.Context, tok string) (stepFailure, bool) {
	if l.group == "" || l.err != nil {
		return stepFailure{}, false
	}
	out, err := l.c.logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName:  aws.String(l.group),
		StartTime:     aws.Int64(l.since.UnixMilli()),
		FilterPattern: aws.String(`"rotation step failed"`),
	})
	if err != nil {
		l.err = err
		return stepFailure{}, false
	}
	for _, e := range out.Events {
		msg := aws.ToString(e.Message)
		var line struct {
			Msg   string `json:"msg"`
			Step  string `json:"step"`
			Token string `json:"token"`
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(msg), &line) == nil && line.Msg == "rotation step failed" {
			if line.Token == tok {
				return stepFailure{step: line.Step, err: line.Error}, true
			}
			continue
		}
		if strings.Contains(msg, tok) {
			return stepFailure{err: strings.TrimSpace(msg)}, true
		}
	}
	return stepFailure{}, false
}

// newToken is a rotation token like the ones Secrets Manager makes (a
// UUID v4).
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// revokedBy lists the kids an emergency rollover from s revokes.
func revokedBy(s lifecycle.State) []string {
	var out []string
	for _, rec := range []*keys.Record{s.Current, s.Pending, s.Next} {
		if rec != nil && !slices.Contains(out, rec.Kid) {
			out = append(out, rec.Kid)
		}
	}
	return out
}
