package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"jwks-issuer/pkg/envconfig"
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
)

// Parameter Store custody: signers read the signing key from the
// SecureString parameter SIGNING_KEY_PARAMETER, not from the secret, and the
// rotator keeps it equal to AWSCURRENT's key (docs/lifecycle.md, "Parameter
// Store custody"). The parameter check reads it as a signer does and says
// whether it holds that key: the same kid and the same public key.

// parameterView is what the parameter check compares.
type parameterView struct {
	name string
	// current is AWSCURRENT's record; nil before the first rotation. In a
	// limited report it holds only the kid of the current tag.
	current *keys.Record
	// want is AWSCURRENT's public key: from its record, or, in a limited
	// report, from the published key set (nil when it is not there).
	want *keys.JWK
	// state and readAt are the view of the secret and when it was read,
	// for lifecycle.ParameterNeedsWrite.
	state    lifecycle.State
	readAt   time.Time
	timeline []lifecycle.KeyTimeline
	limited  bool
}

// checkParameter reads the signing-key parameter and compares it with
// AWSCURRENT; ok is false when the stack is not in Parameter Store custody.
func (r *runner) checkParameter(ctx context.Context, c *clients, t *target, rep *report) (check, bool) {
	if t.cfg.Custody != envconfig.CustodyParameterStore || t.cfg.Parameter == "" {
		return check{}, false
	}
	v := parameterViewOf(t, rep)
	value, err := awsstore.NewParameter(c.ssm, v.name).Get(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return v.missing(t), true
	case deniedParameter(err):
		return v.denied(), true
	case err != nil:
		return check{Name: "parameter", Status: statusUnknown, Summary: fmt.Sprintf("could not read %s: %v", v.name, err),
			Next: hintFor(err)}, true
	}
	held, err := parseParameter(value)
	if err != nil {
		return v.unreadable(t, err), true
	}
	return v.compare(t, held), true
}

func parameterViewOf(t *target, rep *report) parameterView {
	v := parameterView{name: t.cfg.Parameter, current: rep.state.Current, state: rep.state, readAt: rep.readAt,
		timeline: rep.timeline, limited: rep.Limited}
	switch {
	case v.current == nil:
	case !rep.Limited:
		v.want = &v.current.PublicKeyJwk
	default:
		// The current tag names the kid; the published key set has its
		// public half (the jwks check says whether it is there).
		if j, ok := (keys.Set{Keys: rep.published}).Find(v.current.Kid); ok {
			v.want = &j
		}
	}
	return v
}

// deniedParameter tells whether err is a refusal to read the parameter:
// reading it decrypts the private signing key, which few identities may do.
func deniedParameter(err error) bool {
	return err != nil && strings.Contains(apiCode(err), "AccessDenied")
}

// parseParameter reads the parameter's value as a signer in this custody
// does (token.ParameterKeyLoader, without a KMS client): a key record whose
// private key is in it and is the half of its public key. The error never
// holds the value.
func parseParameter(value []byte) (keys.Record, error) {
	rec, err := keys.ParseRecord(value)
	if errors.Is(err, keys.ErrNotRecord) {
		return keys.Record{}, errors.New("it is not a key record")
	}
	if err != nil {
		return keys.Record{}, err
	}
	if _, err := rec.PrivateKey(); err != nil {
		return keys.Record{}, err
	}
	return rec, nil
}

// repairHint is how to have the rotator write AWSCURRENT's key to the
// parameter now rather than at the next hourly cleanup.
func repairHint(t *target) string {
	return fmt.Sprintf("the rotator's cleanup writes AWSCURRENT's key to it (hourly, or now: aws lambda invoke --function-name %s "+
		"--payload '{\"action\":\"cleanup\"}' --cli-binary-format raw-in-base64-out /dev/stdout)", first(t.rotator, "ROTATOR"))
}

func (v parameterView) missing(t *target) check {
	ck := check{Name: "parameter"}
	if v.current == nil {
		ck.Status, ck.Summary = statusOK, v.name+" does not exist yet: the first rotation's finishSecret writes it"
		return ck
	}
	ck.Status = statusProblem
	ck.Summary = fmt.Sprintf("drift: %s is missing: signers answer \"no signing key yet\" (KeyUnavailableError) once "+
		"their cached key expires; AWSCURRENT is %s", v.name, v.current.Kid)
	ck.Next = repairHint(t)
	return ck
}

func (v parameterView) denied() check {
	return check{Name: "parameter", Status: statusInfo, Limited: true,
		Summary: fmt.Sprintf("limited: this identity may not read %s (ssm:GetParameter with decryption), "+
			"so whether it holds AWSCURRENT's key is not checked", v.name),
		Next: fmt.Sprintf("run as an identity allowed ssm:GetParameter on %s (it decrypts the private signing key: "+
			"grant it narrowly, docs/security.md, Parameter Store custody)", v.name)}
}

func (v parameterView) unreadable(t *target, err error) check {
	return check{Name: "parameter", Status: statusProblem,
		Summary: fmt.Sprintf("drift: %s is unreadable: signers refuse it and answer KeyUnavailableError once their cached key expires", v.name),
		Details: []string{err.Error()}, Next: repairHint(t)}
}

// compare judges a parameter holding a readable key record.
func (v parameterView) compare(t *target, held keys.Record) check {
	ck := check{Name: "parameter"}
	switch {
	case v.current == nil:
		ck.Status = statusProblem
		ck.Summary = fmt.Sprintf("drift: %s holds %s, but the secret holds no signing key yet: signers sign with a key "+
			"that is not published", v.name, held.Kid)
		ck.Next = "run the stack's first rotation (jwks-issuer rotate " + strings.TrimSpace(stackFlag(t)) + "): it writes the parameter"
	case held.Kid != v.current.Kid:
		ck = v.anotherKid(t, held)
	case v.want != nil && !samePublicKey(held.PublicKeyJwk, *v.want):
		ck.Status = statusProblem
		ck.Summary = fmt.Sprintf("drift: %s holds kid %s, AWSCURRENT's, with another public key: "+
			"verifiers reject every token signers sign with it", v.name, held.Kid)
		ck.Next = repairHint(t)
	case v.want == nil:
		ck.Status = statusOK
		ck.Summary = fmt.Sprintf("%s holds AWSCURRENT's kid %s, which signers read", v.name, held.Kid)
		ck.Details = []string{"its public key is not compared: the published key set lacks " + held.Kid + " (see the jwks check)"}
	default:
		ck.Status = statusOK
		ck.Summary = fmt.Sprintf("%s holds AWSCURRENT's key %s (the same kid and public key), which signers read", v.name, held.Kid)
	}
	return ck
}

// anotherKid judges a parameter holding a key other than AWSCURRENT's. A
// key newer than this view (the view's NEXT or pending key, or an unknown
// key made after the secret was read) is a rotation that finished while
// status read: the rotator's own writers leave it alone, and so does this
// check. Any other key is drift.
func (v parameterView) anotherKid(t *target, held keys.Record) check {
	ck := check{Name: "parameter", Next: repairHint(t)}
	role := v.roleOf(held.Kid)
	if v.newerThanView(held, role) {
		ck.Status, ck.Next = statusInfo, "run jwks-issuer status again"
		ck.Summary = fmt.Sprintf("%s holds %s (%s as the secret was read), not AWSCURRENT's %s: a rotation finished "+
			"while status read", v.name, held.Kid, first(role, "a newer key"), v.current.Kid)
		return ck
	}
	ck.Status = statusProblem
	ck.Summary = fmt.Sprintf("drift: %s holds another kid, %s, not AWSCURRENT's %s", v.name, held.Kid, v.current.Kid)
	ck.Details = []string{v.heldConsequence(held.Kid, role)}
	return ck
}

// newerThanView tells whether the held key may have been written by a
// rotation that finished after the secret was read, as the rotator's
// writers decide it (lifecycle.ParameterNeedsWrite). A limited view knows
// only the tags: of the keys they name, only NEXT is newer than CURRENT.
func (v parameterView) newerThanView(held keys.Record, role string) bool {
	if v.limited {
		return role == string(lifecycle.RoleNext)
	}
	return !lifecycle.ParameterNeedsWrite(v.state, &held, v.readAt)
}

// heldConsequence says what signing with the held key means for tokens.
func (v parameterView) heldConsequence(kid, role string) string {
	k, _ := v.find(kid)
	switch {
	case role == string(lifecycle.RoleRevoked):
		return fmt.Sprintf("%s is REVOKED (at %s): signers sign with it and verifiers reject those tokens", kid, stamp(k.Retired))
	case role == string(lifecycle.RoleRetired) && !k.Retired.IsZero():
		return fmt.Sprintf("%s is RETIRED (at %s): signers still sign with it, and its tokens stop verifying when it "+
			"leaves the key set (after %s)", kid, stamp(k.Retired), stamp(k.Removal))
	case role != "":
		return fmt.Sprintf("%s is %s: signers sign with it instead of AWSCURRENT's key", kid, role)
	case v.limited:
		return kid + " is neither CURRENT nor NEXT by the secret's tags: signers sign with it instead of AWSCURRENT's key"
	}
	return kid + " is a key the secret does not know: signers sign tokens that no verifier accepts"
}

func (v parameterView) find(kid string) (lifecycle.KeyTimeline, bool) {
	for _, k := range v.timeline {
		if k.Kid == kid {
			return k, true
		}
	}
	return lifecycle.KeyTimeline{}, false
}

// roleOf is the state of kid in the view's timeline, "" when it is not there.
func (v parameterView) roleOf(kid string) string {
	if k, ok := v.find(kid); ok {
		return string(k.Role)
	}
	return ""
}

// samePublicKey compares the key material of two JWKs (kid, alg and use
// are compared elsewhere, or normalised by keys.ParseRecord).
func samePublicKey(a, b keys.JWK) bool {
	return a.Kty == b.Kty && a.Crv == b.Crv && a.X == b.X && a.Y == b.Y && a.N == b.N && a.E == b.E
}
