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
	start := r.started
	deadline := start.Add(timeout)
	secret := awsstore.NewSecrets(c.sm, t.secretID)
	var wrote, newNext, moved, sawPending bool
	logs := &logReader{c: c, group: t.logGroup, since: start.Add(-time.Minute)}
	lastNote := start
	step := func(format string, args ...any) {
		r.printf("[%6s] %s\n", human(r.now().Sub(start)), fmt.Sprintf(format, args...))
	}
	for polls := 0; ; polls++ {
		meta, err := secret.Describe(ctx)
		if err != nil {
			return outcome{token: tok, kind: "failed", reason: "could not describe the secret: " + err.Error(), elapsed: r.now().Sub(start)}
		}
		pending := meta.Stages[store.StagePending] == tok
		current := meta.Stages[store.StageCurrent] == tok
		sawPending = sawPending || pending
		if !wrote && (pending || current) {
			if rec, _ := readRecord(ctx, secret, tok); rec != nil {
				wrote = true
				step("createSecret wrote the pending record: %s", pendingWhat(before.state, rec))
			}
		}
		if !newNext && meta.Stages[store.StageNext] != "" && meta.Stages[store.StageNext] != before.meta.Stages[store.StageNext] {
			if rec, _ := readRecord(ctx, secret, meta.Stages[store.StageNext]); rec != nil {
				newNext = true
				step("createSecret made the new NEXT key %s", rec.Kid)
			} else if limited {
				wrote, newNext = true, true
				step("createSecret wrote the pending record and moved NEXT to a new key (version %s)", meta.Stages[store.StageNext])
			}
		}
		if !moved && current {
			moved = true
			step("testSecret passed and finishSecret moved AWSCURRENT: the new key signs (signers pick it up within KEY_CACHE_SECONDS/2)")
		}
		if current && !pending {
			step("finishSecret done: AWSPENDING is off")
			return outcome{token: tok, kind: "done", elapsed: r.now().Sub(start)}
		}
		if !pending && !current && sawPending {
			o := outcome{token: tok, kind: "refused", elapsed: r.now().Sub(start),
				reason: "the rotator took AWSPENDING off its version without promoting it"}
			// The log line may take a few seconds to reach CloudWatch Logs.
			for wait := r.now().Add(logDelay); ; {
				if f, ok := logs.failure(ctx, tok); ok {
					o.reason, o.step = f.err, f.step
					break
				}
				if !logs.readable() || r.now().After(wait) || ctx.Err() != nil {
					break
				}
				time.Sleep(r.env.Poll)
			}
			return o
		}
		if polls%3 == 2 {
			if f, ok := logs.failure(ctx, tok); ok {
				kind := "failed"
				if strings.Contains(f.err, "rotation refused") {
					kind = "refused"
				}
				return outcome{token: tok, kind: kind, reason: f.err, step: f.step, elapsed: r.now().Sub(start)}
			}
		}
		awaited := awaiting(wrote, newNext, moved)
		if r.now().After(deadline) {
			return outcome{token: tok, kind: "timeout", reason: awaited, elapsed: r.now().Sub(start)}
		}
		if r.now().Sub(lastNote) >= progressEvery {
			lastNote = r.now()
			step("waiting for %s", awaited)
		}
		select {
		case <-ctx.Done():
			return outcome{token: tok, kind: "timeout", reason: awaited + " (interrupted)", elapsed: r.now().Sub(start)}
		case <-time.After(r.env.Poll):
		}
	}
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
