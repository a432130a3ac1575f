package rotation

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/oidc"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
)

const testIssuer = "https://id.example.com"

// withDiscovery gives the env's rotator a discovery document.
func withDiscovery(t *testing.T, e *env, alg keys.Algorithm) *memstore.Object {
	t.Helper()
	doc := memstore.NewObject()
	iss, err := oidc.ParseIssuer("ISSUER_URL", testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.rot.cfg
	cfg.Algorithm = alg
	rot, err := New(cfg, e.secret, e.jwks, LocalCustody{}, e.clock.now, quiet(),
		WithDiscovery(doc, iss, testIssuer+"/.well-known/jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.rot = rot
	return doc
}

func readDiscovery(t *testing.T, doc *memstore.Object) (oidc.Discovery, store.Object) {
	t.Helper()
	obj, err := doc.Get(context.Background())
	if err != nil {
		t.Fatalf("discovery document: %v", err)
	}
	var d oidc.Discovery
	if err := json.Unmarshal(obj.Body, &d); err != nil {
		t.Fatalf("discovery document %q: %v", obj.Body, err)
	}
	return d, obj
}

func TestDiscoveryPublishedBesideTheKeySet(t *testing.T) {
	e := newEnv(t, testConfig())
	doc := withDiscovery(t, e, keys.ES256)
	e.mustRotate(t, tokenN(1))
	d, obj := readDiscovery(t, doc)
	if d.Issuer != testIssuer || d.JWKSURI != testIssuer+"/.well-known/jwks.json" ||
		!slices.Equal(d.IDTokenSigningAlgValuesSupported, []string{"ES256"}) {
		t.Fatalf("discovery %+v", d)
	}
	jwks, _ := e.jwks.Get(context.Background())
	if obj.CacheControl != jwks.CacheControl || obj.ContentType != "application/json" {
		t.Fatalf("discovery headers %q %q, want the key set's %q and application/json", obj.CacheControl, obj.ContentType, jwks.CacheControl)
	}
	// An unchanged state writes nothing.
	if err := e.rot.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again, _ := doc.Get(context.Background()); again.ETag != obj.ETag {
		t.Fatal("cleanup rewrote an unchanged discovery document")
	}
}

func TestCleanupRestoresTheDiscoveryDocument(t *testing.T) {
	e := newEnv(t, testConfig())
	doc := withDiscovery(t, e, keys.ES256)
	e.mustRotate(t, tokenN(1))
	_, good := readDiscovery(t, doc)
	for _, damage := range []string{"", `{"issuer":"https://evil.example"}`, string(good.Body) + " "} {
		if _, err := doc.Put(context.Background(), []byte(damage), "text/plain", "", store.PutCondition{}); err != nil {
			t.Fatal(err)
		}
		if err := e.rot.Cleanup(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, _ := doc.Get(context.Background()); string(got.Body) != string(good.Body) || got.CacheControl != good.CacheControl {
			t.Fatalf("after %q: %s %q, want %s %q", damage, got.Body, got.CacheControl, good.Body, good.CacheControl)
		}
	}
}

// Changing the algorithm lists both until the last key of the old one has
// left the key set, so that verifiers that accept only the listed
// algorithms (go-oidc) keep accepting the old tokens.
func TestDiscoveryListsBothAlgorithmsDuringAChange(t *testing.T) {
	cfg := testConfig()
	e := newEnv(t, cfg)
	doc := withDiscovery(t, e, keys.ES256)
	e.mustRotate(t, tokenN(1))
	doc = withDiscovery(t, e, keys.RS256) // redeployed with KeyAlgorithm=RS256
	algs := func() []string { d, _ := readDiscovery(t, doc); return d.IDTokenSigningAlgValuesSupported }
	e.clock.advance(25 * time.Hour)
	e.mustRotate(t, tokenN(2)) // the ES256 NEXT signs; the new NEXT is RS256
	if got := algs(); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("after the first RS256 key: %v, want both", got)
	}
	e.clock.advance(25 * time.Hour)
	e.mustRotate(t, tokenN(3)) // RS256 signs; the ES256 keys are retired
	if got := algs(); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("while ES256 keys are retired but published: %v, want both", got)
	}
	e.clock.advance(cfg.Retention())
	if err := e.rot.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := algs(); !slices.Equal(got, []string{"RS256"}) {
		t.Fatalf("after the ES256 keys left: %v, want RS256 only", got)
	}
}

// A key set past ALB's 10 keys is published, with a warning in the log
// naming the limit; below it there is none.
func TestWarnsNearAVerifiersLimit(t *testing.T) {
	cfg := testConfig()
	cfg.ActivationGrace, cfg.JWKSMaxAge = 0, 0
	e := newEnv(t, cfg)
	var logs strings.Builder
	rot, err := New(e.rot.cfg, e.secret, e.jwks, LocalCustody{}, e.clock.now, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.rot = rot
	warned := func() bool { return strings.Contains(logs.String(), "ALB JWT verification reads at most 10") }
	e.mustRotate(t, tokenN(1))
	for n := 2; len(e.published(t)) <= 10; n++ {
		if warned() {
			t.Fatalf("warned with %d keys published", len(e.published(t)))
		}
		e.clock.advance(time.Minute) // many rotations inside one retention time
		e.mustRotate(t, tokenN(n))
	}
	if !warned() {
		t.Fatalf("no warning with %d keys published:\n%s", len(e.published(t)), logs.String())
	}
}
