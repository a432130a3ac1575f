package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/oidc"
	"jwks-issuer/pkg/store"
)

// ErrConflict: the key set kept changing under this writer.
var ErrConflict = errors.New("the published key set kept changing during the write")

// discovery is where the OIDC discovery document goes, when an issuer is
// configured.
type discovery struct {
	object  store.Objects
	issuer  oidc.Issuer
	jwksURL string
}

// Option configures a Rotator.
type Option func(*Rotator)

// WithDiscovery makes the rotator publish the discovery document of issuer
// to object beside the key set, naming jwksURL as the key set's address.
func WithDiscovery(object store.Objects, issuer oidc.Issuer, jwksURL string) Option {
	return func(r *Rotator) { r.discovery = &discovery{object: object, issuer: issuer, jwksURL: jwksURL} }
}

// document is one object to publish: where, the copy read before the state,
// and the body the state calls for.
type document struct {
	name    string
	object  store.Objects
	current store.Object
	missing bool
	body    []byte
	attrs   []any // of the log line of a write
	written bool  // by this attempt
}

// publish writes the key set (and the discovery document) of the current
// state. Every writer reads the objects' ETags before the state, and writes
// only if the ETag is unchanged, so a writer holding an older state can
// never overwrite the documents of a newer one; on a conflict it reads all
// again. After the key set is written it records the first publication of
// the keys that lacked one.
func (r *Rotator) publish(ctx context.Context) (snapshot, error) {
	writes := 0 // of the key set, by every attempt
	for attempt := 1; ; attempt++ {
		docs, err := r.readDocuments(ctx)
		if err != nil {
			return snapshot{}, err
		}
		snap, err := r.load(ctx)
		if err != nil {
			return snapshot{}, fmt.Errorf("publish jwks: %w", err)
		}
		set := lifecycle.KeySet(snap.state, r.cfg.Lifecycle, r.now())
		docs[0].body, docs[0].attrs = keys.MarshalSet(set), []any{"kids", kids(set)}
		for _, w := range oidc.KeySetWarnings(len(set), len(docs[0].body)) {
			r.log.Warn("published key set near a verifier's limit", "warning", w)
		}
		if r.discovery != nil {
			docs[1].body = oidc.NewDiscovery(r.discovery.issuer, r.discovery.jwksURL, algorithms(set)).Marshal()
		}
		conflict, err := r.writeDocuments(ctx, docs)
		if err != nil {
			return snapshot{}, err
		}
		if docs[0].written {
			writes++
		}
		if conflict {
			if attempt < r.cfg.PublishAttempts {
				r.log.Info("jwks changed during publish; recomputing", "attempt", attempt)
				continue
			}
			r.metrics.conflicted(r, attempt)
			return snapshot{}, fmt.Errorf("publish jwks: %w after %d attempts", ErrConflict, attempt)
		}
		// Recorded even when the object was already up to date: an earlier
		// attempt may have written it and died before tagging.
		if tags := lifecycle.PublicationTags(snap.state, set, r.now()); len(tags) > 0 {
			if err := r.secret.Tag(ctx, tags); err != nil {
				return snapshot{}, fmt.Errorf("publish jwks: record publication: %w", err)
			}
		}
		r.metrics.published(r, snap.state, set, docs[0].body, writes, attempt-1)
		return snap, nil
	}
}

// readDocuments reads the key set and the discovery document as they are.
func (r *Rotator) readDocuments(ctx context.Context) ([]document, error) {
	docs := []document{{name: "jwks", object: r.jwks}}
	if r.discovery != nil {
		docs = append(docs, document{name: "discovery document", object: r.discovery.object})
	}
	for i := range docs {
		obj, err := docs[i].object.Get(ctx)
		docs[i].missing = errors.Is(err, store.ErrNotFound)
		if err != nil && !docs[i].missing {
			return nil, fmt.Errorf("publish %s: read: %w", docs[i].name, err)
		}
		docs[i].current = obj
	}
	return docs, nil
}

// writeDocuments writes, in order, each document whose stored copy differs
// from its body; conflict is true when one changed since it was read. The
// key set goes first: the discovery document lists the algorithms of the
// keys it holds.
func (r *Rotator) writeDocuments(ctx context.Context, docs []document) (conflict bool, err error) {
	cacheControl := fmt.Sprintf("public, max-age=%d", int64(r.cfg.Lifecycle.JWKSMaxAge/time.Second))
	for i, d := range docs {
		cur := d.current
		if !d.missing && string(cur.Body) == string(d.body) && cur.CacheControl == cacheControl && cur.ContentType == "application/json" {
			continue
		}
		cond := store.PutCondition{IfMatch: cur.ETag, IfNoneMatch: d.missing}
		_, err := d.object.Put(ctx, d.body, "application/json", cacheControl, cond)
		if errors.Is(err, store.ErrPrecondition) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("publish %s: write: %w", d.name, err)
		}
		r.log.Info(d.name+" published", append(d.attrs, "bytes", len(d.body))...)
		docs[i].written = true
	}
	return false, nil
}

func kids(set []keys.JWK) []string {
	out := make([]string, len(set))
	for i, k := range set {
		out[i] = k.Kid
	}
	return out
}

// algorithms lists the algorithms of the keys in set.
func algorithms(set []keys.JWK) []string {
	out := make([]string, len(set))
	for i, k := range set {
		out[i] = k.Alg
	}
	return out
}
