package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/stack"
	"jwks-issuer/pkg/lifecycle"
)

// rotate starts a rotation through Secrets Manager (which here runs the
// real rotator), follows it and reports its outcome; the state before and
// after says what it must report.
func TestRotate(t *testing.T) {
	t.Parallel()
	type expect struct {
		exit int
		want []string
	}
	tests := []struct {
		name  string
		env   map[string]string
		setup func(t *testing.T, s *testStack) (args []string)
		check func(t *testing.T, before, after lifecycle.State, stages map[string]string) expect
	}{
		{"the first rotation", nil, func(t *testing.T, s *testStack) []string { s.configureRotation(t); return nil },
			func(t *testing.T, before, after lifecycle.State, _ map[string]string) expect {
				return expect{ExitOK, []string{"first rotation", "the first key " + after.Current.Kid,
					"new NEXT key " + after.Next.Kid, "finishSecret done", "done in"}}
			}},
		{"a rotation", nil, func(t *testing.T, s *testStack) []string { s.rotate(t); return nil },
			func(t *testing.T, before, after lifecycle.State, _ map[string]string) expect {
				if after.Current.Kid != before.Next.Kid {
					t.Errorf("CURRENT is %s, want the former NEXT %s", after.Current.Kid, before.Next.Kid)
				}
				return expect{ExitOK, []string{"NEXT " + before.Next.Kid + " is promoted", "new NEXT key " + after.Next.Kid,
					"moved AWSCURRENT", "done in", "CURRENT " + after.Current.Kid + " signs",
					"RETIRED " + before.Current.Kid + " verifies until"}}
			}},
		{"refused: NEXT is inside its activation grace", map[string]string{"ACTIVATION_GRACE_SECONDS": "3600"},
			func(t *testing.T, s *testStack) []string { s.rotate(t); return nil },
			func(t *testing.T, before, after lifecycle.State, stages map[string]string) expect {
				published, _ := before.PublishedAt(before.Next)
				if after.Current.Kid != before.Current.Kid || stages["AWSPENDING"] != "" {
					t.Errorf("the refused rotation changed the labels: %v", stages)
				}
				return expect{ExitProblem, []string{"expect a refusal", "refused after",
					"rotation refused: NEXT key " + before.Next.Kid,
					"it may proceed at " + stamp(published.Add(time.Hour))}}
			}},
		{"failed: the bucket is gone", nil, func(t *testing.T, s *testStack) []string {
			s.rotate(t)
			ctx := testCtx(t)
			for _, key := range []string{s.Key, ".well-known/openid-configuration"} {
				if _, err := s.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
				t.Fatal(err)
			}
			return nil
		}, func(t *testing.T, before, after lifecycle.State, stages map[string]string) expect {
			return expect{ExitProblem, []string{"failed in createSecret", "NoSuchBucket", "--token " + stages["AWSPENDING"]}}
		}},
		{"rotation not configured", nil, func(*testing.T, *testStack) []string { return nil },
			func(t *testing.T, before, after lifecycle.State, _ map[string]string) expect {
				if after.Current != nil {
					t.Errorf("a rotation happened")
				}
				return expect{ExitProblem, []string{"the secret has no rotation function", "next: configure it"}}
			}},
		{"--no-wait", nil, func(t *testing.T, s *testStack) []string { s.rotate(t); return []string{"--no-wait"} },
			func(t *testing.T, before, after lifecycle.State, _ map[string]string) expect {
				return expect{ExitOK, []string{"started rotation", "not waiting"}}
			}},
		{"a rotation in progress blocks a new one", nil, func(t *testing.T, s *testStack) []string {
			s.rotate(t)
			if err := s.begin(t, stack.NewToken(), 1); err != nil {
				t.Fatal(err)
			}
			return nil
		}, func(t *testing.T, before, after lifecycle.State, stages map[string]string) expect {
			return expect{ExitProblem, []string{"already in progress", "--token " + stages["AWSPENDING"]}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, tt.env, false)
			args := tt.setup(t, s)
			before, _ := s.secretState(t)
			code, out := s.run(t, "", append([]string{"rotate", "--secret", s.SecretARN}, args...)...)
			s.steps.Wait()
			after, stages := s.secretState(t)
			e := tt.check(t, before, after, stages)
			if code != e.exit {
				t.Errorf("exit %d, want %d\n%s", code, e.exit, out)
			}
			for _, w := range e.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// A stopped rotation is finished with --token, from where it stopped.
func TestRotateResume(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil, false)
	s.rotate(t)
	tok := stack.NewToken()
	if err := s.begin(t, tok, 1); err != nil {
		t.Fatal(err)
	}
	before, _ := s.secretState(t)
	code, out := s.run(t, "", "rotate", "--secret", s.SecretARN, "--token", tok)
	s.steps.Wait()
	after, stages := s.secretState(t)
	if code != ExitOK || stages["AWSCURRENT"] != tok || after.Current.Kid != before.Pending.Kid {
		t.Errorf("exit %d, AWSCURRENT on %s (want %s), CURRENT %s (want %s)\n%s", code, stages["AWSCURRENT"], tok,
			after.Current.Kid, before.Pending.Kid, out)
	}
	if !strings.Contains(out, "resumed rotation "+tok) {
		t.Errorf("output does not say it resumed %s:\n%s", tok, out)
	}
}

// emergency asks first, then revokes CURRENT and NEXT, and waits until the
// key set at its URL has dropped them and lists the fresh key.
func TestEmergency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		stdin string
		args  []string
		done  bool
	}{
		{"confirmed", "yes\n", nil, true},
		{"--yes", "", []string{"--yes"}, true},
		{"not confirmed", "no\n", nil, false},
		{"no answer", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, nil, true)
			s.rotate(t)
			s.rotate(t)
			before, _ := s.secretState(t)
			code, out := s.run(t, tt.stdin, append([]string{"emergency", "--stack", s.stackName}, tt.args...)...)
			s.steps.Wait()
			after, _ := s.secretState(t)
			revoked := []string{before.Current.Kid, before.Next.Kid}
			if !strings.Contains(out, "revokes "+before.Current.Kid+" (CURRENT), "+before.Next.Kid+" (NEXT)") {
				t.Errorf("it does not say what it revokes:\n%s", out)
			}
			if !tt.done {
				if code != ExitProblem || !strings.Contains(out, "not confirmed") || after.Current.Kid != before.Current.Kid {
					t.Errorf("exit %d, CURRENT %s (before %s): want nothing done\n%s", code, after.Current.Kid, before.Current.Kid, out)
				}
				if _, marked := tagsOf(t, s)[lifecycle.TagRollover]; marked {
					t.Error("the emergency mark was set without confirmation")
				}
				return
			}
			var got []string
			for _, k := range after.Current.Revoked {
				got = append(got, k.JWK.Kid)
			}
			slices.Sort(got)
			slices.Sort(revoked)
			if code != ExitOK || !after.Current.Emergency || !slices.Equal(got, revoked) {
				t.Fatalf("exit %d; CURRENT %s emergency %v revokes %v, want %v\n%s", code, after.Current.Kid, after.Current.Emergency, got, revoked, out)
			}
			want := fmt.Sprintf("no longer lists %s and lists %s", strings.Join([]string{before.Current.Kid, before.Next.Kid}, ", "), after.Current.Kid)
			for _, w := range []string{"tagged jwks-issuer:rollover=emergency", "fresh key " + after.Current.Kid + " (emergency)", want} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if lifecycle.EmergencyRequested(tagsOf(t, s)) {
				t.Error("the emergency mark is still set")
			}
		})
	}
}

// sign invokes the signer and prints its token, which verify accepts; a
// refused request says what to do.
func TestSign(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil, true)
	s.rotate(t)
	state, _ := s.secretState(t)
	code, out := s.run(t, "", "sign", "--stack", s.stackName, fmt.Sprintf(`{"claims":{"iss":%q,"sub":"u1"},"ttl":30}`, s.edge.URL))
	tok := strings.TrimSpace(out)
	if code != ExitOK || strings.Count(tok, ".") != 2 {
		t.Fatalf("exit %d: %s", code, out)
	}
	code, out = s.run(t, "", "verify", "--stack", s.stackName, tok)
	if code != ExitOK || !strings.Contains(out, "signed by "+state.Current.Kid) {
		t.Errorf("the signed token does not verify as %s's: exit %d\n%s", state.Current.Kid, code, out)
	}
	code, out = s.run(t, `{"claims":{},"ttl":-5}`, "sign", "--stack", s.stackName, "-")
	if code != ExitProblem || !strings.Contains(out, "the signer refused (RequestError)") || !strings.Contains(out, "next: fix the request") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// What the command cannot read ends in exit 2 with what to do next.
func TestUnreadable(t *testing.T) {
	t.Parallel()
	cfg := stack.Config(moto)
	cfg.BaseEndpoint = aws.String(proxy.URL)
	noCreds := cfg.Copy()
	noCreds.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no credentials in this test")
	})
	noCreds.RetryMaxAttempts = 1
	other := "not-ours-" + randomHex(4)
	if _, err := cloudformation.NewFromConfig(stack.Config(moto)).CreateStack(testCtx(t), &cloudformation.CreateStackInput{
		StackName: aws.String(other),
		TemplateBody: aws.String(`{"Resources":{"Handle":{"Type":"AWS::CloudFormation::WaitConditionHandle"}},` +
			`"Outputs":{"Foo":{"Value":"bar"}}}`)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  Env
		args []string
		want string
	}{
		{"no such stack", Env{AWS: &cfg}, []string{"status", "--stack", "no-such-stack"}, "no such stack \"no-such-stack\""},
		{"a stack that is not a jwks-issuer stack", Env{AWS: &cfg}, []string{"status", "--stack", other}, "has no SecretArn output"},
		{"no such secret", Env{AWS: &cfg}, []string{"status", "--secret", "no-such-secret"}, "next: no such secret"},
		{"no credentials", Env{AWS: &noCreds}, []string{"status", "--secret", "x"}, "next: no AWS credentials: set AWS_PROFILE"},
		{"nothing named", Env{AWS: &cfg}, []string{"status"}, "next: pass --stack NAME, or --secret ARN"},
		{"an unknown command", Env{}, []string{"frobnicate"}, "unknown command"},
		{"no command", Env{}, nil, "usage: jwks-issuer COMMAND"},
		{"an unknown setting", Env{}, []string{"status", "--set", "FOO=1"}, "want NAME=VALUE"},
		{"a setting the rotator refuses", Env{}, []string{"verify", "--issuer", "http://127.0.0.1:1",
			"--set", "ACTIVATION_GRACE_SECONDS=1", "x"}, "ACTIVATION_GRACE_SECONDS (1) is below JWKS_MAX_AGE_SECONDS"},
		{"verify without an issuer", Env{}, []string{"verify", "x"}, "name the issuer"},
		{"an unreachable key set", Env{}, []string{"verify", "--jwks-url", "http://127.0.0.1:1/jwks.json", "x"}, "fetch the key set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			code := tt.env.Run(testCtx(t), tt.args, &out, &out)
			if code != ExitUnreadable || !strings.Contains(out.String(), tt.want) {
				t.Errorf("exit %d, want %d and %q:\n%s", code, ExitUnreadable, tt.want, out.String())
			}
		})
	}
}

func tagsOf(t *testing.T, s *testStack) map[string]string {
	t.Helper()
	d, err := s.SM.DescribeSecret(testCtx(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.SecretARN)})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range d.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}

// Without the secret's values (the resource policy denies them to all but
// the functions and the break-glass role), emergency and rotate work from
// the labels and tags, and status says which role to use.
func TestWithoutValues(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil, true)
	s.rotate(t)
	s.rotate(t)
	before, _ := s.secretState(t)
	s.denyValues.Store(true)
	code, out := s.run(t, "", "status", "--json", "--stack", s.stackName)
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if code != ExitOK || !rep.Limited || find(rep.Checks, "records").Status != statusInfo {
		t.Errorf("status: exit %d, limited %v, want %d and a limited report:\n%s", code, rep.Limited, ExitOK, out)
	}
	// What the tags and the published key set tell: CURRENT, NEXT, and the
	// retired key without its times.
	want := []string{before.Current.Kid + " CURRENT", before.Next.Kid + " NEXT", before.Current.Retired[0].JWK.Kid + " RETIRED"}
	var got []string
	for _, k := range rep.Keys {
		got = append(got, k.Kid+" "+k.State)
		if k.State == "RETIRED" && (k.RetiredAt != nil || k.LeavesJWKSAfter != nil) {
			t.Errorf("a retired key's times are shown without its record: %+v", k)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("limited status lists %v, want %v", got, want)
	}
	for _, c := range rep.Checks {
		if c.Status != statusOK && c.Name != "records" {
			t.Errorf("check %s is %s: %s %v", c.Name, c.Status, c.Summary, c.Details)
		}
	}
	code, out = s.run(t, "", "timeline", "--stack", s.stackName)
	if code != ExitUnreadable || !strings.Contains(out, "run this as that role") {
		t.Errorf("timeline: exit %d, want %d and the break-glass hint:\n%s", code, ExitUnreadable, out)
	}
	code, out = s.run(t, "", "emergency", "--stack", s.stackName, "--yes")
	s.steps.Wait()
	s.denyValues.Store(false)
	after, _ := s.secretState(t)
	if code != ExitOK || !after.Current.Emergency {
		t.Fatalf("emergency: exit %d, CURRENT %+v\n%s", code, after.Current, out)
	}
	for _, w := range []string{"may not read the secret's values",
		"revokes " + before.Current.Kid + " (CURRENT), " + before.Next.Kid + " (NEXT)",
		"no longer lists " + before.Current.Kid + ", " + before.Next.Kid + " and lists " + after.Current.Kid} {
		if !strings.Contains(out, w) {
			t.Errorf("emergency output lacks %q:\n%s", w, out)
		}
	}
	s.denyValues.Store(true)
	code, out = s.run(t, "", "rotate", "--stack", s.stackName)
	s.steps.Wait()
	s.denyValues.Store(false)
	final, _ := s.secretState(t)
	if code != ExitOK || final.Current.Kid != after.Next.Kid || !strings.Contains(out, "moved NEXT to a new key") {
		t.Errorf("rotate: exit %d, CURRENT %s (want %s)\n%s", code, final.Current.Kid, after.Next.Kid, out)
	}
}
