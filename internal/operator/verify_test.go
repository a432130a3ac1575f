package operator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"jwks-issuer/pkg/lifecycle"
)

// verify accepts the signer's tokens and explains each kind of rejection,
// naming the key and what the secret knows of it.
func TestVerify(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil, true)
	s.rotate(t)
	s.rotate(t)
	state, _ := s.secretState(t)
	current := state.Current.Kid
	iss := s.edge.URL
	c := testCtx(t)
	sign := func(claims string) string {
		t.Helper()
		tok, err := s.Sign(c, claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(fmt.Sprintf(`{"claims":{"iss":%q,"aud":"hotsock","sub":"user-1"},"ttl":30}`, iss))
	expiredAt := time.Now().Add(-time.Hour).Unix()
	expired := sign(fmt.Sprintf(`{"claims":{"iss":%q,"aud":"hotsock","exp":%d}}`, iss, expiredAt))
	// The signer refuses another iss: this token is signed with the
	// current key by hand.
	priv, err := state.Current.PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	forged := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://issuer.example.com", "aud": "hotsock",
		"exp": time.Now().Add(time.Minute).Unix()})
	forged.Header["kid"] = current
	otherIss, err := forged.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	altered := parts[0] + "." + b64json(t, map[string]any{"iss": iss, "aud": "hotsock", "sub": "admin", "exp": time.Now().Add(time.Minute).Unix()}) + "." + parts[2]
	hs256 := b64json(t, map[string]any{"alg": "HS256", "kid": current, "typ": "JWT"}) + "." + parts[1] + ".c2lnbmF0dXJl"
	foreign := b64json(t, map[string]any{"alg": "ES256", "kid": "someone-elses-key-000", "typ": "JWT"}) + "." + parts[1] + "." + parts[2]

	stackArgs := []string{"--stack", s.stackName}
	tests := []struct {
		name  string
		args  []string
		stdin string
		exit  int
		want  []string // each must be in the output
	}{
		{"a good token", []string{good, "--audience", "hotsock"}, "", ExitOK,
			[]string{"valid: signed by " + current + " (CURRENT, ES256)", "iss " + iss, "aud hotsock", "sub user-1"}},
		{"a good token from standard input", []string{"-"}, good + "\n", ExitOK, []string{"valid: signed by " + current}},
		{"a good token, without AWS: the issuer alone", []string{"--issuer", iss, good}, "", ExitOK,
			[]string{"valid: signed by " + current + " (ES256)", "aud was not checked"}},
		{"expired", []string{expired}, "", ExitProblem,
			[]string{"- expired: it expired", "at " + stamp(time.Unix(expiredAt, 0))}},
		{"bad signature", []string{altered}, "", ExitProblem,
			[]string{"- bad signature: the signature does not verify with key " + current}},
		{"wrong iss", []string{otherIss}, "", ExitProblem,
			[]string{`- wrong iss: the token says iss "https://issuer.example.com"; the issuer is "` + iss + `"`}},
		{"wrong aud", []string{good, "--audience", "someone-else"}, "", ExitProblem,
			[]string{`- wrong aud: the token is for "hotsock", not "someone-else"`}},
		{"wrong alg", []string{hs256}, "", ExitProblem, []string{`- wrong alg: the token says alg "HS256"`}},
		{"a kid the secret does not know", []string{foreign}, "", ExitProblem,
			[]string{"- unknown kid: someone-elses-key-000 is not in the key set; the secret does not know it"}},
		{"a kid, without AWS", []string{"--issuer", iss, foreign}, "", ExitProblem,
			[]string{"- unknown kid: someone-elses-key-000 is not in the key set; pass --stack"}},
		{"not a token", []string{"not-a-token"}, "", ExitProblem, []string{"- malformed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify"}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--issuer") {
				args = append(args, stackArgs...)
			}
			code, out := s.run(t, tt.stdin, args...)
			if code != tt.exit {
				t.Errorf("exit %d, want %d\n%s", code, tt.exit, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			// Each kind of rejection is explained once.
			seen := map[string]bool{}
			for _, line := range strings.Split(out, "\n") {
				if kind, _, ok := strings.Cut(strings.TrimPrefix(line, "  - "), ":"); ok && strings.HasPrefix(line, "  - ") {
					if seen[kind] {
						t.Errorf("%q is explained twice:\n%s", kind, out)
					}
					seen[kind] = true
				}
			}
		})
	}

	// A token of a key revoked in an emergency: the kid was ours.
	t.Run("a revoked kid", func(t *testing.T) {
		s.tag(t, lifecycle.TagRollover, lifecycle.RolloverEmergency)
		s.rotate(t)
		after, _ := s.secretState(t)
		var revokedAt string
		for _, k := range after.Current.Revoked {
			if k.JWK.Kid == current {
				revokedAt = stamp(k.RevokedAt)
			}
		}
		if revokedAt == "" {
			t.Fatalf("%s was not revoked: %+v", current, after.Current.Revoked)
		}
		code, out := s.run(t, "", "verify", good, "--stack", s.stackName)
		want := "- unknown kid: " + current + " is not in the key set; it was ours, REVOKED at " + revokedAt
		if code != ExitProblem || !strings.Contains(out, want) {
			t.Errorf("exit %d, want %d and %q:\n%s", code, ExitProblem, want, out)
		}
	})
}

// A key retired long enough ago has left the key set: its token's kid is
// unknown, and verify says it was ours and when it left.
func TestVerifyRetiredKid(t *testing.T) {
	t.Parallel()
	s := newStack(t, map[string]string{"MAX_TOKEN_TTL_SECONDS": "1"}, false)
	s.rotate(t)
	tok, err := s.Sign(testCtx(t), `{"claims":{"sub":"user-1"},"ttl":1}`)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.secretState(t)
	s.rotate(t)
	s.rotate(t)
	state, _ := s.secretState(t)
	tl := lifecycle.Timeline(state, lifecycleOf(t, map[string]string{"MAX_TOKEN_TTL_SECONDS": "1"}), time.Now())
	var retired lifecycle.KeyTimeline
	for _, k := range tl {
		if k.Kid == first.Current.Kid {
			retired = k
		}
	}
	if retired.Role != lifecycle.RoleRetired {
		t.Fatalf("%s is not retired: %+v", first.Current.Kid, tl)
	}
	time.Sleep(time.Until(retired.Removal) + 50*time.Millisecond)
	if err := s.Cleanup(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	code, out := s.run(t, "", "verify", tok, "--secret", s.SecretARN, "--leeway", "0s")
	for _, want := range []string{
		"- unknown kid: " + first.Current.Kid + " is not in the key set; it was ours, RETIRED at " + stamp(retired.Retired),
		"it left the key set after " + stamp(retired.Removal),
		"- expired: it expired",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != ExitProblem {
		t.Errorf("exit %d, want %d", code, ExitProblem)
	}
}

func b64json(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
