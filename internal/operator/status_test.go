package operator

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"jwks-issuer/internal/stack"
	"jwks-issuer/pkg/envconfig"
	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
)

// secretState reads the secret directly (labels, tags, records), for the
// tests' expectations.
func (s *testStack) secretState(t *testing.T) (lifecycle.State, map[string]string) {
	t.Helper()
	ctx := testCtx(t)
	d, err := s.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.SecretARN)})
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]string{}
	for v, labels := range d.VersionIdsToStages {
		for _, l := range labels {
			stages[l] = v
		}
	}
	tags := map[string]string{}
	for _, tg := range d.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	read := func(stage string) *keys.Record {
		v := stages[stage]
		if v == "" || (stage == "AWSPENDING" && v == stages["AWSCURRENT"]) {
			return nil
		}
		out, err := s.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretARN), VersionId: aws.String(v)})
		if err != nil || out.SecretString == nil {
			return nil
		}
		rec, err := keys.ParseRecord([]byte(*out.SecretString))
		if err != nil {
			return nil
		}
		return &rec
	}
	return lifecycle.NewState(read("AWSCURRENT"), read("AWSPENDING"), read("NEXT"), tags), stages
}

// lifecycleOf is the configuration the stack's rotator runs with.
func lifecycleOf(t *testing.T, env map[string]string) lifecycle.Config {
	t.Helper()
	vars := compressed()
	maps.Copy(vars, env)
	vars["SECRET_ID"], vars["JWKS_BUCKET"] = "s", "b"
	cfg, err := envconfig.LoadRotator(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Lifecycle
}

// The report lists the keys the secret knows, in the order and states
// lifecycle.Timeline gives them, and its checks find what each scenario
// did to the stack.
func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       map[string]string
		withStack bool
		setup     func(t *testing.T, s *testStack)
		exit      int
		checks    map[string]string // check name → status; unlisted checks must be ok
		more      func(t *testing.T, s *testStack, rep report, state lifecycle.State)
	}{
		{name: "no rotation yet", withStack: true, setup: func(*testing.T, *testStack) {}, exit: ExitProblem,
			checks: map[string]string{"jwks": statusProblem, "discovery": statusProblem, "promotion": statusProblem,
				"schedule": statusProblem, "jwks-url": statusProblem, "discovery-url": statusProblem}},
		{name: "after the first rotation, found from the stack's outputs", withStack: true,
			setup: func(t *testing.T, s *testStack) { s.rotate(t) }, exit: ExitOK,
			more: func(t *testing.T, s *testStack, rep report, _ lifecycle.State) {
				for _, st := range rep.Settings {
					if want := map[string]string{"ACTIVATION_GRACE_SECONDS": fromRotator, "JWKS_BUCKET": fromRotator,
						"KEY_ALGORITHM": fromDefault}[st.Name]; want != "" && st.Source != want {
						t.Errorf("setting %s comes from %q, want %q", st.Name, st.Source, want)
					}
				}
			}},
		{name: "after a second rotation", setup: func(t *testing.T, s *testStack) { s.rotate(t); s.rotate(t) }, exit: ExitOK,
			more: func(t *testing.T, s *testStack, rep report, state lifecycle.State) {
				if len(state.Current.Retired) != 1 || rep.Keys[2].State != "RETIRED" || rep.Keys[2].Kid != state.Current.Retired[0].JWK.Kid {
					t.Errorf("the retired key %v is not the third row: %+v", state.Current.Retired, rep.Keys)
				}
				// A flag overrides the rotator's setting, says so, and the
				// removal time follows it.
				_, out := s.run(t, "", "status", "--json", "--secret", s.SecretARN, "--set", "RETIREMENT_GRACE_SECONDS=7200")
				var over report
				if err := json.Unmarshal([]byte(out), &over); err != nil {
					t.Fatal(err)
				}
				for _, st := range over.Settings {
					if st.Name == "RETIREMENT_GRACE_SECONDS" && (st.Value != "7200" || st.Source != fromFlag) {
						t.Errorf("RETIREMENT_GRACE_SECONDS is %s from %s, want 7200 from %s", st.Value, st.Source, fromFlag)
					}
				}
				cfg := lifecycleOf(t, map[string]string{"RETIREMENT_GRACE_SECONDS": "7200"})
				row := findRow(over.Keys, state.Current.Retired[0].JWK.Kid)
				if row.RetiredAt == nil || row.LeavesJWKSAfter == nil || !row.LeavesJWKSAfter.Equal(row.RetiredAt.Add(cfg.Retention())) {
					t.Errorf("with RETIREMENT_GRACE_SECONDS=7200 the retired key leaves at %v, retired at %v, want retirement + %v",
						row.LeavesJWKSAfter, row.RetiredAt, cfg.Retention())
				}
			}},
		{name: "after a refused rotation", env: map[string]string{"ACTIVATION_GRACE_SECONDS": "3600"},
			setup: func(t *testing.T, s *testStack) {
				s.rotate(t)
				if err := s.begin(t, stack.NewToken(), 1); err == nil || !strings.Contains(err.Error(), "rotation refused") {
					t.Fatalf("the second rotation was not refused: %v", err)
				}
			}, exit: ExitOK, checks: map[string]string{"promotion": statusInfo},
			more: func(t *testing.T, s *testStack, rep report, state lifecycle.State) {
				published, _ := state.PublishedAt(state.Next)
				promo := find(rep.Checks, "promotion")
				if want := published.Add(time.Hour); promo.At == nil || !promo.At.Equal(want.UTC()) {
					t.Errorf("promotion check says %v, NEXT was published at %v: want %v", promo.At, published, want)
				}
			}},
		{name: "a rotation stopped after createSecret", setup: func(t *testing.T, s *testStack) {
			s.rotate(t)
			if err := s.begin(t, stack.NewToken(), 1); err != nil {
				t.Fatal(err)
			}
		}, exit: ExitProblem, checks: map[string]string{"pending": statusProblem}},
		{name: "emergency requested", setup: func(t *testing.T, s *testStack) {
			s.rotate(t)
			s.tag(t, lifecycle.TagRollover, lifecycle.RolloverEmergency)
		}, exit: ExitProblem, checks: map[string]string{"emergency": statusProblem}},
		{name: "after an emergency rollover", setup: func(t *testing.T, s *testStack) {
			s.rotate(t)
			s.rotate(t)
			s.tag(t, lifecycle.TagRollover, lifecycle.RolloverEmergency)
			s.rotate(t)
		}, exit: ExitOK, more: func(t *testing.T, s *testStack, rep report, state lifecycle.State) {
			if !state.Current.Emergency || len(state.Current.Revoked) != 2 {
				t.Fatalf("the rollover did not happen: %+v", state.Current)
			}
			for _, k := range state.Current.Revoked {
				row := findRow(rep.Keys, k.JWK.Kid)
				if row.State != "REVOKED" || row.InKeySet || row.Published == nil || *row.Published {
					t.Errorf("revoked key %s is listed as %+v", k.JWK.Kid, row)
				}
			}
			if !rep.Keys[0].Emergency {
				t.Errorf("CURRENT is not marked as made in an emergency: %+v", rep.Keys[0])
			}
		}},
		{name: "a retired key past its retention, before the cleanup", env: map[string]string{"MAX_TOKEN_TTL_SECONDS": "1"},
			setup: func(t *testing.T, s *testStack) {
				s.rotate(t)
				s.rotate(t)
				time.Sleep(1100 * time.Millisecond)
			}, exit: ExitOK, checks: map[string]string{"jwks": statusInfo},
			more: func(t *testing.T, s *testStack, rep report, state lifecycle.State) {
				old := state.Current.Retired[0].JWK.Kid
				row := findRow(rep.Keys, old)
				if row.InKeySet || row.Published == nil || !*row.Published {
					t.Errorf("%s should be out of the key set and still published: %+v", old, row)
				}
				if c := find(rep.Checks, "jwks"); !strings.Contains(strings.Join(c.Details, " "), old+" (RETIRED) is due to leave") {
					t.Errorf("the jwks check does not say %s is due to leave: %+v", old, c)
				}
			}},
		{name: "KMS custody, after an emergency rollover", env: map[string]string{"KEY_CUSTODY": "kms",
			"KMS_DELETION_WINDOW_DAYS": "7", "KMS_KEY_TAG": "operator-" + randomHex(4)},
			setup: func(t *testing.T, s *testStack) {
				s.rotate(t)
				s.tag(t, lifecycle.TagRollover, lifecycle.RolloverEmergency)
				s.rotate(t)
			}, exit: ExitOK, checks: map[string]string{"kms": statusOK},
			more: func(t *testing.T, s *testStack, rep report, state lifecycle.State) {
				for _, row := range rep.Keys {
					want := "Enabled"
					if row.State == "REVOKED" {
						want = "Disabled"
					}
					if row.Custody != "kms" || row.KMSKeyID == "" || row.KMSState != want {
						t.Errorf("%s %s: custody %s, KMS key %q in state %q, want %s", row.Kid, row.State, row.Custody, row.KMSKeyID, row.KMSState, want)
					}
				}
			}},
		{name: "with the JWKS deleted", setup: func(t *testing.T, s *testStack) {
			s.rotate(t)
			if _, err := s.S3.DeleteObject(testCtx(t), &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Key)}); err != nil {
				t.Fatal(err)
			}
		}, exit: ExitProblem, checks: map[string]string{"jwks": statusProblem, "jwks-url": statusProblem},
			more: func(t *testing.T, s *testStack, rep report, _ lifecycle.State) {
				if c := find(rep.Checks, "jwks"); !strings.Contains(c.Summary, "drift") || !strings.Contains(c.Summary, "missing") {
					t.Errorf("the jwks check does not report the missing object as drift: %+v", c)
				}
			}},
		{name: "with a stale key in the JWKS", setup: func(t *testing.T, s *testStack) {
			s.rotate(t)
			next, _ := s.secretState(t)
			s.rotate(t)
			// The key set of the previous state: CURRENT's predecessor is
			// published in NEXT's place, and the new NEXT is missing.
			body := keys.MarshalSet([]keys.JWK{next.Next.Public(), next.Current.Public()})
			if _, err := s.S3.PutObject(testCtx(t), &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Key),
				Body: strings.NewReader(string(body)), ContentType: aws.String("application/json"),
				CacheControl: aws.String("public, max-age=0")}); err != nil {
				t.Fatal(err)
			}
		}, exit: ExitProblem, checks: map[string]string{"jwks": statusProblem},
			more: func(t *testing.T, s *testStack, rep report, state lifecycle.State) {
				c := find(rep.Checks, "jwks")
				if !strings.Contains(strings.Join(c.Details, "\n"), "missing "+state.Next.Kid) {
					t.Errorf("the jwks check does not name the missing NEXT %s: %+v", state.Next.Kid, c)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, tt.env, tt.withStack)
			tt.setup(t, s)
			state, _ := s.secretState(t)
			target := []string{"--secret", s.SecretARN}
			if tt.withStack {
				target = []string{"--stack", s.stackName}
			}
			code, out := s.run(t, "", append([]string{"status", "--json"}, target...)...)
			if code != tt.exit {
				t.Errorf("status --json exit %d, want %d\n%s", code, tt.exit, out)
			}
			var rep report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("status --json is not one JSON document: %v\n%s", err, out)
			}
			if rep.ExitStatus != code {
				t.Errorf("the report says exit %d, the command exited %d", rep.ExitStatus, code)
			}
			want := lifecycle.Timeline(state, lifecycleOf(t, tt.env), time.Now())
			if len(rep.Keys) != len(want) {
				t.Fatalf("%d keys listed, the secret knows %d:\n%s", len(rep.Keys), len(want), out)
			}
			for i, k := range want {
				if got := rep.Keys[i]; got.Kid != k.Kid || got.State != string(k.Role) || got.InKeySet != k.InKeySet {
					t.Errorf("key %d is %s %s (in key set %v), want %s %s (%v)", i, got.Kid, got.State, got.InKeySet, k.Kid, k.Role, k.InKeySet)
				}
			}
			for _, c := range rep.Checks {
				want := tt.checks[c.Name]
				if want == "" {
					want = statusOK
				}
				if c.Status != want {
					t.Errorf("check %s is %s, want %s: %s %v", c.Name, c.Status, want, c.Summary, c.Details)
				}
			}
			for name := range tt.checks {
				if find(rep.Checks, name).Name == "" {
					t.Errorf("no %s check", name)
				}
			}
			if tt.more != nil {
				tt.more(t, s, rep, state)
			}

			// The text report says the same.
			code, text := s.run(t, "", append([]string{"status"}, target...)...)
			if code != tt.exit {
				t.Errorf("status exit %d, want %d", code, tt.exit)
			}
			for _, k := range want {
				if !containsLine(text, k.Kid, string(k.Role)) {
					t.Errorf("the text report has no line with %s and %s:\n%s", k.Kid, k.Role, text)
				}
			}
			for _, c := range rep.Checks {
				if !containsLine(text, c.Name, c.Status) {
					t.Errorf("the text report has no line with check %s %s:\n%s", c.Name, c.Status, text)
				}
			}
			if last := lastLine(text); (tt.exit == ExitOK) != (last == "healthy") {
				t.Errorf("the text report ends with %q, exit %d", last, tt.exit)
			}
		})
	}
}

func (s *testStack) tag(t *testing.T, key, value string) {
	t.Helper()
	if _, err := s.SM.TagResource(testCtx(t), &secretsmanager.TagResourceInput{SecretId: aws.String(s.SecretARN),
		Tags: []smtypes.Tag{{Key: aws.String(key), Value: aws.String(value)}}}); err != nil {
		t.Fatal(err)
	}
}

func find(cs []check, name string) check {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return check{}
}

func findRow(rows []keyRow, kid string) keyRow {
	for _, r := range rows {
		if r.Kid == kid {
			return r
		}
	}
	return keyRow{}
}

// containsLine tells whether one line of text holds all the words.
func containsLine(text string, words ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return true
		}
	}
	return false
}

func lastLine(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
