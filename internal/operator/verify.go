package operator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/oidc"
	"jwks-issuer/pkg/verify"
)

func runVerify(ctx context.Context, r *runner, args []string) int {
	fs := r.flags()
	audience := fs.String("audience", "", "require aud to name `AUD`")
	leeway := fs.Duration("leeway", time.Minute, "clock-skew allowance for exp and nbf, as verifiers' (CLOCK_SKEW_SECONDS)")
	pos, status, ok := r.parse(fs, args)
	if !ok {
		return status
	}
	if len(pos) != 1 {
		return r.usageError("give one TOKEN, or - to read it from standard input")
	}
	token := pos[0]
	if token == "-" {
		b, err := io.ReadAll(io.LimitReader(r.env.Stdin, 1<<20))
		if err != nil {
			return r.fail(fmt.Errorf("read the token from standard input: %w", err))
		}
		token = string(b)
	}
	token = strings.TrimSpace(token)

	t, state, status, ok := r.verifyTarget(ctx)
	if !ok {
		return status
	}
	set, source, err := r.issuerKeys(ctx, t)
	if err != nil {
		return r.fail(err)
	}
	v := verification{now: r.now(), leeway: *leeway, issuer: t.cfg.Issuer.String(), audience: *audience,
		verdict: r.verifyWith(ctx, t, source, token, *audience, *leeway)}
	if state != nil {
		v.timeline = lifecycle.Timeline(*state, t.cfg.Lifecycle, v.now)
	}
	res := v.check(token, set)
	r.printf("key set: %s (%s)\n", source, describeSet(set.Keys))
	for _, w := range t.warnings {
		r.printf("note: %s\n", w)
	}
	if len(res.rejections) == 0 {
		r.printf("valid: %s\n", res.summary)
		for _, n := range res.notes {
			r.printf("  note: %s\n", n)
		}
		return ExitOK
	}
	r.printf("rejected:\n")
	for _, rj := range res.rejections {
		r.printf("  - %s: %s\n", rj.kind, rj.why)
	}
	for _, n := range res.notes {
		r.printf("  note: %s\n", n)
	}
	return ExitProblem
}

// verifyTarget resolves what verify needs: the issuer or key set URL, and
// the secret's state when it can be read (to say whether an unknown kid
// was ours). Without --stack or --secret it uses no AWS at all.
func (r *runner) verifyTarget(ctx context.Context) (*target, *lifecycle.State, int, bool) {
	if r.t.stack == "" && r.t.secret == "" {
		t := &target{outputs: map[string]string{}}
		if err := t.settle(r.t.set); err != nil {
			return nil, nil, r.fail(err), false
		}
		t.jwksURL = first(r.t.jwksURL, t.cfg.JWKSURL)
		if t.jwksURL == "" && t.cfg.Issuer.IsZero() {
			return nil, nil, r.usageError("name the issuer: --issuer URL, --jwks-url URL or --stack NAME"), false
		}
		return t, nil, 0, true
	}
	c, err := r.clients(ctx)
	if err != nil {
		return nil, nil, r.fail(err), false
	}
	t, err := r.resolve(ctx, c, false)
	if err != nil {
		return nil, nil, r.fail(err), false
	}
	if t.secretID == "" {
		return t, nil, 0, true
	}
	snap, err := readSnapshot(ctx, c, t.secretID)
	if err != nil {
		t.warnings = append(t.warnings, fmt.Sprintf("the secret's records are not readable (%v): an unknown kid cannot be traced", err))
		return t, nil, 0, true
	}
	return t, &snap.state, 0, true
}

// issuerKeys fetches the key set as a verifier does: through the discovery
// document when there is an issuer, else from the key set URL.
func (r *runner) issuerKeys(ctx context.Context, t *target) (keys.Set, string, error) {
	url := t.jwksURL
	if !t.cfg.Issuer.IsZero() {
		docURL := t.cfg.Issuer.String() + "/" + oidc.DiscoveryName
		body, status, err := r.fetch(ctx, docURL)
		if err == nil && status != 200 {
			err = fmt.Errorf("HTTP %d", status)
		}
		if err != nil {
			return keys.Set{}, "", &hinted{fmt.Errorf("fetch the discovery document %s: %w", docURL, err),
				"check --issuer (the rotator's ISSUER_URL) and your network; jwks-issuer status checks what is published"}
		}
		var doc oidc.Discovery
		if err := json.Unmarshal(body, &doc); err != nil || doc.JWKSURI == "" {
			return keys.Set{}, "", &hinted{fmt.Errorf("the discovery document %s names no jwks_uri", docURL),
				"jwks-issuer status compares it with what the secret calls for"}
		}
		if doc.Issuer != t.cfg.Issuer.String() {
			t.warnings = append(t.warnings, fmt.Sprintf("the discovery document says issuer %q, not %q: verifiers refuse it", doc.Issuer, t.cfg.Issuer))
		}
		url = doc.JWKSURI
	}
	body, status, err := r.fetch(ctx, url)
	if err == nil && status != 200 {
		err = fmt.Errorf("HTTP %d", status)
	}
	if err != nil {
		return keys.Set{}, "", &hinted{fmt.Errorf("fetch the key set %s: %w", url, err), "check --jwks-url (the stack's JwksUrl) and your network"}
	}
	set, err := keys.ParseSet(body)
	if err != nil {
		return keys.Set{}, "", &hinted{fmt.Errorf("the key set at %s: %w", url, err), "jwks-issuer status compares it with what the secret calls for"}
	}
	return set, url, nil
}

// verification checks one token the way the README asks verifiers to.
type verification struct {
	now      time.Time
	leeway   time.Duration
	issuer   string // "" when not known: iss is not checked
	audience string // "" when not asked: aud is not checked
	timeline []lifecycle.KeyTimeline
	// verdict is pkg/verify's; nil when it was not asked.
	verdict *verifyResult
}

type rejection struct{ kind, why string }

type verdict struct {
	summary    string
	rejections []rejection
	notes      []string
}

// issuedAlgorithms are the algorithms the issuer signs with.
var issuedAlgorithms = []string{string(keys.ES256), string(keys.ES384), string(keys.RS256)}

func (v verification) check(token string, set keys.Set) verdict {
	var out verdict
	header, claims, ok := out.parse(token)
	if !ok {
		return out
	}
	// Every check runs, so that the rejection lists every reason; they
	// are listed in the order a verifier meets them.
	keyFits := v.checkKey(&out, header, set)
	exp := v.checkExpiry(&out, claims)
	v.checkNotBefore(&out, claims)
	v.checkIssuer(&out, claims)
	auds := v.checkAudience(&out, claims)
	v.merge(&out, header.Kid, keyFits)
	if len(out.rejections) > 0 {
		return out
	}
	out.summary = v.summary(header, claims, exp, auds)
	if v.issuer == "" {
		out.notes = append(out.notes, "iss was not checked: no issuer is known (--issuer)")
	}
	if v.audience == "" {
		out.notes = append(out.notes, "aud was not checked (--audience)")
	}
	return out
}

func (out *verdict) reject(kind, format string, args ...any) {
	out.rejections = append(out.rejections, rejection{kind, fmt.Sprintf(format, args...)})
}

// tokenHeader is what the checks read of a token's header. It is an alias
// of an unnamed struct: a header that does not decode is explained with the
// decoder's message, which names the type.
type tokenHeader = struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// parse decodes the token's header and claims; ok is false, with the
// rejection, when it is not a JWT: nothing else can be checked then.
func (out *verdict) parse(token string) (header tokenHeader, claims map[string]any, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		out.reject("malformed", "a JWT has three dot-separated parts, this has %d", len(parts))
		return header, nil, false
	}
	if err := decodePart(parts[0], &header); err != nil {
		out.reject("malformed", "the header: %v", err)
		return header, nil, false
	}
	if err := decodePart(parts[1], &claims); err != nil {
		out.reject("malformed", "the claims: %v", err)
		return header, nil, false
	}
	return header, claims, true
}

// checkKey checks alg and kid against the key set; it tells whether the
// key the token names fits it (known, with the token's alg), so that the
// signature check means something.
func (v verification) checkKey(out *verdict, h tokenHeader, set keys.Set) bool {
	jwk, known := set.Find(h.Kid)
	algOK := slices.Contains(issuedAlgorithms, h.Alg)
	switch {
	case !algOK:
		out.reject("wrong alg", "the token says alg %q; this issuer signs only with %s", h.Alg, strings.Join(issuedAlgorithms, ", "))
	case known && jwk.Alg != h.Alg:
		out.reject("wrong alg", "the token says alg %s, but key %s is %s", h.Alg, h.Kid, jwk.Alg)
		algOK = false
	}
	switch {
	case h.Kid == "":
		out.reject("unknown kid", "the token has no kid; this issuer's tokens always name their key")
	case !known:
		out.reject("unknown kid", "%s is not in the key set; %s", h.Kid, v.whoseKid(h.Kid))
	}
	return algOK && known
}

// checkExpiry checks exp, which verifiers must require, with the leeway
// they allow; it returns exp for the summary.
func (v verification) checkExpiry(out *verdict, claims map[string]any) time.Time {
	exp, hasExp, err := numericDate(claims, "exp")
	switch {
	case err != nil:
		out.reject("malformed", "%v", err)
	case !hasExp:
		out.reject("no exp", "the token has no exp: verifiers must require it")
	case v.now.After(exp.Add(v.leeway)):
		out.reject("expired", "it expired %s ago, at %s (beyond the %s leeway)", human(v.now.Sub(exp)), stamp(exp), human(v.leeway))
	case v.now.After(exp):
		out.notes = append(out.notes, fmt.Sprintf("it expired %s ago, within the %s leeway", human(v.now.Sub(exp)), human(v.leeway)))
	}
	return exp
}

// checkNotBefore checks nbf, when the token has one.
func (v verification) checkNotBefore(out *verdict, claims map[string]any) {
	if nbf, ok, err := numericDate(claims, "nbf"); err != nil {
		out.reject("malformed", "%v", err)
	} else if ok && nbf.After(v.now.Add(v.leeway)) {
		out.reject("not yet valid", "nbf is %s from now, at %s", human(nbf.Sub(v.now)), stamp(nbf))
	}
}

// checkIssuer compares iss with the issuer, when it is known.
func (v verification) checkIssuer(out *verdict, claims map[string]any) {
	if v.issuer == "" {
		return
	}
	iss, _ := claims["iss"].(string)
	switch {
	case claims["iss"] == nil:
		out.reject("wrong iss", "the token has no iss; the issuer is %s", v.issuer)
	case iss != v.issuer:
		out.reject("wrong iss", "the token says iss %q; the issuer is %q (compared byte for byte)", iss, v.issuer)
	}
}

// checkAudience requires the --audience asked for; it returns the token's
// audiences for the summary.
func (v verification) checkAudience(out *verdict, claims map[string]any) []string {
	auds := audiences(claims["aud"])
	if v.audience == "" {
		return auds
	}
	switch {
	case len(auds) == 0:
		out.reject("wrong aud", "the token has no aud; %q was required", v.audience)
	case !slices.Contains(auds, v.audience):
		out.reject("wrong aud", "the token is for %s, not %q", strings.Join(quoteAll(auds), ", "), v.audience)
	}
	return auds
}

// summary describes a valid token: its key, expiry and the claims people
// look for.
func (v verification) summary(h tokenHeader, claims map[string]any, exp time.Time, auds []string) string {
	role := ""
	if k, ok := v.find(h.Kid); ok {
		role = string(k.Role) + ", "
	}
	s := fmt.Sprintf("signed by %s (%s%s), expires in %s (at %s)", h.Kid, role, h.Alg, human(exp.Sub(v.now)), stamp(exp))
	if iss, _ := claims["iss"].(string); iss != "" {
		s += ", iss " + iss
	}
	if len(auds) > 0 {
		s += ", aud " + strings.Join(auds, " ")
	}
	if sub, ok := claims["sub"].(string); ok {
		s += ", sub " + sub
	}
	return s
}

func (v verification) find(kid string) (lifecycle.KeyTimeline, bool) {
	for _, k := range v.timeline {
		if k.Kid == kid {
			return k, true
		}
	}
	return lifecycle.KeyTimeline{}, false
}

// whoseKid says what the secret knows of a kid the key set lacks.
func (v verification) whoseKid(kid string) string {
	if v.timeline == nil {
		return "pass --stack (or --secret) to learn whether it was ever this issuer's key"
	}
	k, ok := v.find(kid)
	switch {
	case !ok:
		return "the secret does not know it: not a key of this issuer, or one retired so long ago that its record is gone"
	case k.Role == lifecycle.RoleRevoked:
		return fmt.Sprintf("it was ours, REVOKED at %s in an emergency rollover: its tokens are refused on purpose", stamp(k.Retired))
	case k.Role == lifecycle.RoleRetired && !k.InKeySet:
		return fmt.Sprintf("it was ours, RETIRED at %s; it left the key set after %s, when every token it signed had expired",
			stamp(k.Retired), stamp(k.Removal))
	}
	return fmt.Sprintf("it is our %s key, yet the published key set lacks it: drift (jwks-issuer status)", k.Role)
}

// kindOf names a pkg/verify refusal as this command's explanations do.
var kindOf = map[verify.Reason]string{
	verify.ReasonMalformed:         "malformed",
	verify.ReasonTooLarge:          "malformed",
	verify.ReasonWrongAlgorithm:    "wrong alg",
	verify.ReasonUnknownKid:        "unknown kid",
	verify.ReasonBadSignature:      "bad signature",
	verify.ReasonExpired:           "expired",
	verify.ReasonNotYetValid:       "not yet valid",
	verify.ReasonWrongIssuer:       "wrong iss",
	verify.ReasonWrongAudience:     "wrong aud",
	verify.ReasonKeySetUnavailable: "key set unavailable",
}

// merge adds pkg/verify's verdict (the issuer's own verifier checks the
// signature) to the explanations: a refusal they do not already give, and
// whether the signature verified.
func (v verification) merge(out *verdict, kid string, keyFits bool) {
	if v.verdict == nil || v.verdict.err == nil {
		return
	}
	err := v.verdict.err
	reason := verify.ReasonOf(err)
	if reason == verify.ReasonWrongAudience && v.audience == "" {
		return // aud is checked only when --audience asks
	}
	kind := first(kindOf[reason], "refused")
	if signatureVerified(reason) && keyFits {
		out.notes = append(out.notes, "the signature verifies with key "+kid)
	}
	if out.explains(kind) {
		return
	}
	out.rejections = append(out.rejections, rejection{kind, refusalDetail(err, reason, kid)})
}

// signatureVerified tells whether a refusal for reason came after the
// signature verified: pkg/verify checks the signature before the claims
// (the reasons after ReasonBadSignature), and an unavailable key set says
// nothing about it.
func signatureVerified(reason verify.Reason) bool {
	return reason > verify.ReasonBadSignature && reason != verify.ReasonKeySetUnavailable
}

// explains tells whether a rejection of this kind is already listed.
// pkg/verify calls a missing exp malformed, which "no exp" already says.
func (out *verdict) explains(kind string) bool {
	for _, r := range out.rejections {
		if r.kind == kind || (kind == "malformed" && r.kind == "no exp") {
			return true
		}
	}
	return false
}

// refusalDetail is pkg/verify's refusal in words: its detail, and for a
// bad signature what that means.
func refusalDetail(err error, reason verify.Reason, kid string) string {
	if reason == verify.ReasonBadSignature {
		return fmt.Sprintf("the signature does not verify with key %s: the token was changed after signing, "+
			"or another key signed it", kid)
	}
	var e *verify.Error
	if errors.As(err, &e) && e.Detail != "" {
		return e.Detail
	}
	return err.Error()
}

// verifyWith asks pkg/verify, the issuer's verifier, for its verdict on
// the token: with the issuer (through its discovery document) when there
// is one, else with the key set URL and the issuer's algorithms.
func (r *runner) verifyWith(ctx context.Context, t *target, keySetURL, token, audience string, leeway time.Duration) *verifyResult {
	cfg := verify.Config{ClockSkew: leeway, HTTPClient: r.env.HTTP, Now: r.env.Now, FetchTimeout: 10 * time.Second,
		StaleIfError: -1}
	if !t.cfg.Issuer.IsZero() {
		cfg.Issuer = t.cfg.Issuer.String()
	} else {
		cfg.JWKSURL, cfg.Algorithms = keySetURL, issuedAlgorithms
	}
	cfg.Audiences = []string{audience}
	if audience == "" {
		// aud is not asked for: any audience the token names passes.
		cfg.Audiences = []string{"-"}
		if parts := strings.Split(token, "."); len(parts) == 3 {
			var claims map[string]any
			if decodePart(parts[1], &claims) == nil {
				for _, a := range audiences(claims["aud"]) {
					if a != "" {
						cfg.Audiences = append(cfg.Audiences, a)
					}
				}
			}
		}
	}
	verifier, err := verify.New(cfg)
	if err != nil {
		return &verifyResult{err: err}
	}
	defer verifier.Close()
	_, err = verifier.Verify(ctx, token)
	return &verifyResult{err: err}
}

type verifyResult struct{ err error }

func decodePart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return fmt.Errorf("not base64url: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	return nil
}

// numericDate reads a NumericDate claim.
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	raw, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, isNum := raw.(json.Number)
	if !isNum {
		return time.Time{}, false, fmt.Errorf("%s is not a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, false, fmt.Errorf("%s is not a usable number: %s", name, n)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
