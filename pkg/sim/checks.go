package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/store"
)

// observedObject checks every successful write of the key set.
type observedObject struct {
	store.Objects
	w *World
}

func (o observedObject) Put(ctx context.Context, body []byte, contentType, cacheControl string, cond store.PutCondition) (string, error) {
	etag, err := o.Objects.Put(ctx, body, contentType, cacheControl, cond)
	if err == nil {
		o.w.checkPublication(body)
	}
	return etag, err
}

// observedParameter counts the signing-key parameter's writes.
type observedParameter struct {
	store.Parameter
	w *World
}

func (p observedParameter) Put(ctx context.Context, value []byte) error {
	err := p.Parameter.Put(ctx, value)
	if err == nil {
		p.w.report.ParameterWrites++
	}
	return err
}

// observedSecrets learns each key's public half when it is first written, so
// that a wrong key published under the right kid is caught.
type observedSecrets struct {
	store.Secrets
	w *World
}

func (s observedSecrets) Tag(ctx context.Context, tags map[string]string) error {
	defer s.w.secretWritten()
	return s.Secrets.Tag(ctx, tags)
}

func (s observedSecrets) PutVersion(ctx context.Context, id string, value []byte, stages []string) error {
	defer s.w.secretWritten()
	_, current, _ := s.w.secret.GetStage(ctx, store.StageCurrent)
	err := s.Secrets.PutVersion(ctx, id, value, stages)
	if err != nil {
		return err
	}
	rec, perr := keys.ParseRecord(value)
	if perr != nil {
		return err
	}
	if _, known := s.w.jwkOf[rec.Kid]; !known {
		s.w.jwkOf[rec.Kid] = rec.Public()
	}
	if _, cerr := keys.ParseRecord(current); rec.Emergency || errors.Is(cerr, keys.ErrNotRecord) {
		s.w.exempt[rec.Kid] = true // may sign before Ga: nothing could depend on it yet
	}
	return err
}

// revoked lists every kid ever revoked: in any version's record, or a tag.
// It is cached until the secret is next written.
func (w *World) revoked() map[string]bool {
	if w.revokedCache != nil {
		return w.revokedCache
	}
	ctx := context.Background()
	out := map[string]bool{}
	for _, v := range w.secret.Versions() {
		value, err := w.secret.GetVersion(ctx, v)
		if err != nil {
			continue
		}
		if rec, err := keys.ParseRecord(value); err == nil {
			for _, k := range rec.Revoked {
				out[k.JWK.Kid] = true
			}
		}
	}
	meta, _ := w.secret.Describe(ctx)
	for k := range meta.Tags {
		if kid, ok := strings.CutPrefix(k, "jwks-issuer:revoked:"); ok {
			out[kid] = true
		}
	}
	w.revokedCache = out
	return out
}

// secretWritten drops what was derived from the secret.
func (w *World) secretWritten() { w.revokedCache = nil }

func (w *World) record(stage string) *keys.Record {
	_, value, err := w.secret.GetStage(context.Background(), stage)
	if err != nil {
		return nil
	}
	rec, err := keys.ParseRecord(value)
	if err != nil {
		return nil
	}
	return &rec
}

func (w *World) breakInvariant(format string, args ...any) {
	w.report.InvariantBreaks++
	w.problem(format, args...)
}

// checkPublication checks a key set just written against invariants 1–6,
// using what the world observed rather than the code's own decisions.
func (w *World) checkPublication(body []byte) {
	w.report.Publications++
	set, err := keys.ParseSet(body)
	if err != nil {
		w.breakInvariant("published a key set that does not parse: %v", err)
		return
	}
	present := map[string]bool{}
	for _, k := range set.Keys {
		present[k.Kid] = true
		if truth, ok := w.jwkOf[k.Kid]; !ok || truth != k {
			w.breakInvariant("published kid %s with a key that is not the one the secret holds", k.Kid)
		}
		if _, ok := w.firstPublished[k.Kid]; !ok {
			w.firstPublished[k.Kid] = w.now
		}
	}
	revoked := w.revoked()
	if cur := w.record(store.StageCurrent); cur != nil && !revoked[cur.Kid] && !present[cur.Kid] {
		w.breakInvariant("published a key set without CURRENT %s", cur.Kid)
	}
	if next := w.record(store.StageNext); next != nil && !revoked[next.Kid] && !present[next.Kid] {
		meta, _ := w.secret.Describe(context.Background())
		if _, published := meta.Tags["jwks-issuer:published:"+next.Kid]; published {
			w.breakInvariant("published a key set without the published NEXT %s", next.Kid)
		}
	}
	for kid, until := range w.liveUntil {
		if until.After(w.now) && !revoked[kid] && !present[kid] {
			w.breakInvariant("dropped %s while its tokens live until %s", kid, until.Sub(w.start))
		}
	}
	for kid := range revoked {
		since, done := w.revokedSince[kid]
		switch {
		case present[kid] && done:
			w.breakInvariant("revoked key %s published again (revoked at +%s)", kid, since.Sub(w.start))
		case !present[kid] && !done:
			w.revokedSince[kid] = w.now
		}
	}
}

// checkSigning checks invariant 1 when a signer signs: the key has been
// published for at least M, so every verifier's cached copy holds it.
func (w *World) checkSigning(kid string) {
	if w.revoked()[kid] {
		return
	}
	first, ok := w.firstPublished[kid]
	switch {
	case !ok:
		w.breakInvariant("signed with %s, never published", kid)
	case !w.exempt[kid] && w.now.Sub(first) < w.p.Config.JWKSMaxAge:
		w.breakInvariant("signed with %s only %s after its first publication", kid, w.now.Sub(first))
	}
}

// verifier caches the key set for up to M and refetches on an unknown kid.
type verifier struct {
	w       *World
	skew    time.Duration
	set     keys.Set
	fetched time.Time
	has     bool
}

func (v *verifier) fetch() {
	v.fetched, v.has = v.w.now, true
	v.set = keys.Set{}
	obj, err := v.w.jwks.Get(context.Background())
	if err != nil {
		return
	}
	if set, err := keys.ParseSet(obj.Body); err == nil {
		v.set = set
	}
}

func (v *verifier) check(tok, kid string, exp time.Time) {
	w := v.w
	w.report.Verifications++
	if !v.has || w.now.Sub(v.fetched) > w.p.Config.JWKSMaxAge {
		v.fetch()
	}
	key, found := v.set.Find(kid)
	if !found && w.now.After(v.fetched) {
		v.fetch()
		key, found = v.set.Find(kid)
	}
	accepted := found && !w.now.Add(v.skew).After(exp.Add(w.p.Config.ClockSkew))
	if accepted {
		if w.rng.IntN(w.p.VerifySample) == 0 {
			accepted = signatureValid(tok, key)
		} else {
			accepted = key == w.jwkOf[kid]
		}
	}
	if w.revoked()[kid] {
		since, done := w.revokedSince[kid]
		if accepted && done && w.now.After(since.Add(w.p.Config.JWKSMaxAge)) {
			w.report.AcceptedAfterRevocation++
			w.problem("token of %s accepted %s after its revocation was published", kid, w.now.Sub(since))
		}
		if !accepted {
			w.report.RevokedRejected++
		}
		return
	}
	if !accepted {
		w.report.WronglyRejected++
		w.problem("token of %s (never revoked, exp +%s) rejected; kid in the verifier's copy: %v", kid, exp.Sub(w.start), found)
	}
}

// signatureValid verifies an ES256 token with crypto/ecdsa directly.
func signatureValid(tok string, key keys.JWK) bool {
	dot := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil || len(sig) != 64 {
		return false
	}
	pub, err := key.PublicKey()
	if err != nil {
		return false
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	digest := sha256.Sum256([]byte(tok[:dot]))
	return ecdsa.Verify(ec, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}
