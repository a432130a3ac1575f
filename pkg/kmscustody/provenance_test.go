package kmscustody_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/kmscustody"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/memstore"
)

// policyDoc is a key policy as the tests read it.
type policyDoc struct {
	Statement []struct {
		Sid       string
		Effect    string
		Principal struct{ AWS any }
		Action    any
		Resource  any
		Condition any
	}
}

func strList(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			s, _ := e.(string)
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	}
	return nil
}

// Every key NewKey makes carries an explicit policy: the account root may
// administer the key but not use it, and only the stack's two roles may
// sign with it and read its public key. The key also carries the secret tag.
func TestNewKeyHasExplicitPolicy(t *testing.T) {
	ctx := context.Background()
	c, api, _ := newCustody(t)
	rec, err := c.NewKey(ctx, keys.ES256, version(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	assertStackPolicy(t, api, rec.KMSKeyID, c.Policy(), "arn:aws:iam::000000000000:root")
	listed, err := api.ListKeysTagged(ctx, kmscustody.TagSecret, testSecret)
	if err != nil || len(listed) != 1 || listed[0].ARN != rec.KMSKeyID {
		t.Errorf("keys tagged with the secret: %v, %v; want the new key", listed, err)
	}
}

// assertStackPolicy checks the policy KMS holds for keyID.
func assertStackPolicy(t *testing.T, api store.KMS, keyID, want, root string) {
	t.Helper()
	got, err := api.KeyPolicy(context.Background(), keyID)
	if err != nil {
		t.Fatalf("KeyPolicy(%s): %v", keyID, err)
	}
	var g, w any
	if json.Unmarshal([]byte(got), &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		t.Fatalf("policies do not parse: %s / %s", got, want)
	}
	if gb, _ := json.Marshal(g); string(gb) != mustMarshal(w) {
		t.Errorf("key policy = %s, want the custody's %s", got, want)
	}
	var doc policyDoc
	if err := json.Unmarshal([]byte(got), &doc); err != nil {
		t.Fatal(err)
	}
	use := []string{"kms:GetPublicKey", "kms:Sign"}
	var admin, roles bool
	for _, s := range doc.Statement {
		if s.Effect != "Allow" || s.Condition != nil {
			t.Errorf("statement %s: effect %s, condition %v; want a plain Allow", s.Sid, s.Effect, s.Condition)
		}
		principals, actions := strList(s.Principal.AWS), strList(s.Action)
		switch {
		case slices.Equal(principals, []string{root}):
			admin = true
			for _, a := range actions {
				if strings.Contains(a, "*") || a == "kms:Sign" || a == "kms:GetPublicKey" || a == "kms:CreateGrant" || a == "kms:Verify" {
					t.Errorf("the account may %s: it must administer the key, not use it or grant its use", a)
				}
			}
			if !slices.Contains(actions, "kms:PutKeyPolicy") || !slices.Contains(actions, "kms:ScheduleKeyDeletion") {
				t.Errorf("the account lacks kms:PutKeyPolicy or kms:ScheduleKeyDeletion (%v): the key would be unmanageable", actions)
			}
		case slices.Equal(principals, sortedCopy(signerRole, rotatorRole)):
			roles = true
			if !slices.Equal(actions, use) {
				t.Errorf("the stack's roles may %v, want exactly %v", actions, use)
			}
		default:
			t.Errorf("statement %s grants %v to %v", s.Sid, actions, principals)
		}
	}
	if !admin || !roles {
		t.Errorf("policy %s: want one statement for the account root and one for the two roles", got)
	}
}

func sortedCopy(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// New needs the account for the policy, from the roles or the secret's ARN,
// and refuses roles that are not both role ARNs of one account.
func TestNewValidatesRoles(t *testing.T) {
	api := memstore.NewKMS(nil)
	for _, c := range []struct {
		opts []kmscustody.Option
		want string
	}{
		{[]kmscustody.Option{kmscustody.ForSecret("KeySecret")}, "give SECRET_ID as the secret's ARN"},
		{[]kmscustody.Option{kmscustody.WithRoles(signerRole, "")}, "must be set together"},
		{[]kmscustody.Option{kmscustody.WithRoles("signer", rotatorRole)}, "SIGNER_ROLE_ARN is \"signer\", not an IAM role ARN"},
		{[]kmscustody.Option{kmscustody.WithRoles(signerRole, "arn:aws:iam::000000000000:user/x")}, "ROTATOR_ROLE_ARN is"},
		{[]kmscustody.Option{kmscustody.WithRoles(signerRole, "arn:aws:iam::111111111111:role/r")}, "different accounts"},
	} {
		if _, err := kmscustody.New(api, stackTag, 7, time.Now, quiet(), c.opts...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New: err = %v, want one saying %q", err, c.want)
		}
	}
	// Without roles (a local run) the account comes from the secret's ARN
	// and may sign through IAM.
	c, err := kmscustody.New(api, stackTag, 7, time.Now, quiet(), kmscustody.ForSecret(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	var doc policyDoc
	if err := json.Unmarshal([]byte(c.Policy()), &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Statement {
		if p := strList(s.Principal.AWS); !slices.Equal(p, []string{"arn:aws:iam::000000000000:root"}) {
			t.Errorf("without roles, statement %s names %v, want only the account", s.Sid, p)
		}
	}
}

// A key someone else made and tagged as this stack's (even with every tag
// the custody writes, and even when the secret's record names it as
// dropped) is never disabled or scheduled for deletion by cleanup; the
// custody's own keys are, once dropped. A key made before keys carried
// their policy keeps signing, is disabled when revoked, and is never
// deleted.
func TestTidyTouchesOnlyKeysItMade(t *testing.T) {
	ctx := context.Background()
	c, api, clk := newCustody(t)
	mk := func(n int) keys.Record {
		t.Helper()
		rec, err := c.NewKey(ctx, keys.ES256, version(n), clk.now())
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	foreignKey := func(tags map[string]string, policy string) store.KeyInfo {
		t.Helper()
		k, err := api.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256, Policy: policy})
		if err != nil {
			t.Fatal(err)
		}
		if err := api.Tag(k.ID, tags); err != nil { // someone else tags it
			t.Fatal(err)
		}
		return k
	}
	stackOnly := map[string]string{kmscustody.TagStack: stackTag}
	allTags := func(n int) map[string]string {
		return map[string]string{kmscustody.TagStack: stackTag, kmscustody.TagVersion: version(n),
			kmscustody.TagKid: "forgedkid" + version(n)[30:], kmscustody.TagSecret: testSecret}
	}

	live, dropped, orphan, revoked := mk(1), mk(2), mk(3), mk(4)
	// A database key someone tagged with the stack tag.
	tagged := foreignKey(stackOnly, "")
	// A signing key with every tag the custody writes, but its own policy.
	lookalike := foreignKey(allTags(5), "")
	// The same with a policy the rotator may not read.
	hidden := foreignKey(allTags(6), "")
	if err := api.HidePolicy(hidden.ID); err != nil {
		t.Fatal(err)
	}
	// Someone else's key with exactly this custody's policy but made for
	// another secret.
	otherSecret := allTags(7)
	otherSecret[kmscustody.TagSecret] = "arn:aws:secretsmanager:us-east-1:000000000000:secret:other-AbCdEf"
	otherSecretKey := foreignKey(otherSecret, c.Policy())
	// Keys made before this version: default policy, no secret tag.
	legacyTags := func(n int) map[string]string {
		return map[string]string{kmscustody.TagStack: stackTag, kmscustody.TagVersion: version(n), kmscustody.TagKid: "legacykid" + version(n)[30:]}
	}
	legacyDropped, legacyRevoked, legacyOrphan := foreignKey(legacyTags(8), ""), foreignKey(legacyTags(9), ""), foreignKey(legacyTags(10), "")

	clk.advance(kmscustody.OrphanAge + time.Minute)
	refs := func(ks ...store.KeyInfo) []string {
		var out []string
		for _, k := range ks {
			out = append(out, k.ARN)
		}
		return out
	}
	droppedRefs := append([]string{dropped.KMSKeyID}, refs(tagged, lookalike, hidden, otherSecretKey, legacyDropped)...)
	var calls []string
	api.SetHook(func(op string) error { calls = append(calls, op); return nil })
	if err := c.Tidy(ctx, []string{live.KMSKeyID}, []string{revoked.KMSKeyID, legacyRevoked.ARN}, droppedRefs); err != nil {
		t.Fatalf("Tidy: %v", err)
	}
	want := map[string]string{
		live.KMSKeyID:      store.KeyEnabled,
		dropped.KMSKeyID:   store.KeyPendingDeletion,
		orphan.KMSKeyID:    store.KeyPendingDeletion,
		revoked.KMSKeyID:   store.KeyDisabled,
		tagged.ARN:         store.KeyEnabled,
		lookalike.ARN:      store.KeyEnabled,
		hidden.ARN:         store.KeyEnabled,
		otherSecretKey.ARN: store.KeyEnabled,
		legacyDropped.ARN:  store.KeyEnabled,
		legacyRevoked.ARN:  store.KeyDisabled,
		legacyOrphan.ARN:   store.KeyEnabled,
	}
	for arn, state := range want {
		if k, err := api.DescribeKey(ctx, arn); err != nil || k.State != state {
			t.Errorf("key %s: %s, %v; want %s", arn, k.State, err, state)
		}
	}
	if n := strings.Count(strings.Join(calls, " "), memstore.OpScheduleKeyDeletion); n != 2 {
		t.Errorf("%d ScheduleKeyDeletion calls, want 2 (the dropped and the orphaned key of this custody): %v", n, calls)
	}

	// The legacy keys keep signing: the custody signs with whatever key the
	// record names.
	legacyRec := keys.Record{KMSKeyID: legacyOrphan.ARN, Kid: "legacykid", Alg: keys.ES256, CreatedAt: t0}
	der, err := api.GetPublicKey(ctx, legacyOrphan.ARN)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if legacyRec.PublicKeyJwk, err = keys.PublicJWK(pub, legacyRec.Kid, keys.ES256); err != nil {
		t.Fatal(err)
	}
	key, err := c.SigningKey(legacyRec)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := key.SignProbe(ctx, map[string]any{"exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatalf("signing with a key made before keys carried their policy: %v", err)
	}
	verifyJWT(t, tok, legacyRec)
	if err := c.CheckKeys(ctx, legacyRec); err != nil {
		t.Errorf("CheckKeys of a key made before keys carried their policy: %v", err)
	}
}

// A retried createSecret does not adopt a key someone else made to look like
// the one its earlier attempt made: that key would sign every token, and
// its owner could sign tokens too.
func TestNewKeyDoesNotReuseALookalike(t *testing.T) {
	ctx := context.Background()
	c, api, _ := newCustody(t)
	k, err := api.CreateKey(ctx, store.CreateKeyRequest{Spec: store.KeySpecP256, Tags: map[string]string{
		kmscustody.TagStack: stackTag, kmscustody.TagVersion: version(1), kmscustody.TagKid: "lookalikekid000000000",
		kmscustody.TagSecret: testSecret,
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.NewKey(ctx, keys.ES256, version(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	if rec.KMSKeyID == k.ARN || rec.Kid == "lookalikekid000000000" {
		t.Fatalf("NewKey adopted a key it did not make: %s", rec.KMSKeyID)
	}
	again, err := c.NewKey(ctx, keys.ES256, version(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	if again.KMSKeyID != rec.KMSKeyID {
		t.Errorf("a retry made another key (%s) instead of reusing its own (%s)", again.KMSKeyID, rec.KMSKeyID)
	}
}
