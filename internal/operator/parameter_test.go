package operator

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// parameterCustody is the environment of a stack in Parameter Store
// custody, as e2e's newStack makes one.
func parameterCustody() map[string]string {
	return map[string]string{"KEY_CUSTODY": "parameterstore",
		"SIGNING_KEY_PARAMETER": "/jwks-issuer/operator-" + randomHex(4) + "/signing-key"}
}

// putParameter overwrites the signing-key parameter as the rotator writes it.
func (s *testStack) putParameter(t *testing.T, value []byte) {
	t.Helper()
	if _, err := s.ssm.PutParameter(testCtx(t), &ssm.PutParameterInput{Name: aws.String(s.parameter), Value: aws.String(string(value)),
		Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

// Under Parameter Store custody, status shows that custody for every key and
// checks that the signing-key parameter holds AWSCURRENT's key: the same kid
// and public key. Each way it can differ is drift, named as such; an
// identity that may not read it gets a limited check, not a failure.
func TestParameterCustody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup returns what the parameter check's text must say.
		setup  func(t *testing.T, s *testStack) []string
		exit   int
		status string
		// limited: the secret's values are denied too.
		limited bool
	}{
		{name: "healthy after a rotation", exit: ExitOK, status: statusOK, setup: func(t *testing.T, s *testStack) []string {
			s.rotate(t)
			state, _ := s.secretState(t)
			return []string{"holds AWSCURRENT's key " + state.Current.Kid, "same kid and public key"}
		}},
		{name: "deleted", exit: ExitProblem, status: statusProblem, setup: func(t *testing.T, s *testStack) []string {
			s.rotate(t)
			if _, err := s.ssm.DeleteParameter(testCtx(t), &ssm.DeleteParameterInput{Name: aws.String(s.parameter)}); err != nil {
				t.Fatal(err)
			}
			return []string{"drift: " + s.parameter + " is missing", "cleanup"}
		}},
		{name: "overwritten with the retired key", exit: ExitProblem, status: statusProblem, setup: func(t *testing.T, s *testStack) []string {
			s.rotate(t)
			before, _ := s.secretState(t)
			s.rotate(t)
			after, _ := s.secretState(t)
			s.putParameter(t, before.Current.SigningOnly().Marshal())
			return []string{"drift: " + s.parameter + " holds another kid, " + before.Current.Kid + ", not AWSCURRENT's " + after.Current.Kid,
				before.Current.Kid + " is RETIRED"}
		}},
		{name: "overwritten with something else", exit: ExitProblem, status: statusProblem, setup: func(t *testing.T, s *testStack) []string {
			s.rotate(t)
			s.putParameter(t, []byte("-----BEGIN PRIVATE KEY-----"))
			return []string{"drift: " + s.parameter + " is unreadable", "not a key record"}
		}},
		{name: "not readable by this identity", exit: ExitOK, status: statusInfo, setup: func(t *testing.T, s *testStack) []string {
			s.rotate(t)
			s.denyParameter.Store(true)
			return []string{"limited: this identity may not read " + s.parameter, "ssm:GetParameter"}
		}},
		{name: "the secret's values denied, healthy", exit: ExitOK, status: statusOK, limited: true,
			setup: func(t *testing.T, s *testStack) []string {
				s.rotate(t)
				s.rotate(t)
				state, _ := s.secretState(t)
				return []string{"holds AWSCURRENT's key " + state.Current.Kid}
			}},
		{name: "the secret's values denied, the retired key", exit: ExitProblem, status: statusProblem, limited: true,
			setup: func(t *testing.T, s *testStack) []string {
				s.rotate(t)
				before, _ := s.secretState(t)
				s.rotate(t)
				s.putParameter(t, before.Current.SigningOnly().Marshal())
				return []string{"drift: " + s.parameter + " holds another kid, " + before.Current.Kid, before.Current.Kid + " is RETIRED"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, parameterCustody(), true)
			words := tt.setup(t, s)
			state, _ := s.secretState(t)
			s.denyValues.Store(tt.limited)
			code, out := s.run(t, "", "status", "--json", "--stack", s.stackName)
			if code != tt.exit {
				t.Errorf("status --json exit %d, want %d\n%s", code, tt.exit, out)
			}
			var rep report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			c := find(rep.Checks, "parameter")
			if c.Status != tt.status || c.Limited != (tt.status == statusInfo) {
				t.Errorf("the parameter check is %s (limited %v), want %s: %s %v", c.Status, c.Limited, tt.status, c.Summary, c.Details)
			}
			for _, other := range rep.Checks {
				if other.Name != "parameter" && other.Name != "records" && other.Status != statusOK {
					t.Errorf("check %s is %s: %s %v", other.Name, other.Status, other.Summary, other.Details)
				}
			}
			text := strings.Join(append([]string{c.Summary, c.Next}, c.Details...), "\n")
			for _, w := range words {
				if !strings.Contains(text, w) {
					t.Errorf("the parameter check does not say %q:\n%s", w, text)
				}
			}
			if strings.Contains(out, "PRIVATE KEY") {
				t.Errorf("status prints the parameter's value:\n%s", out)
			}
			wantCustody := "parameterstore"
			if tt.limited {
				wantCustody = "unknown" // the records say which keys are in KMS
			}
			for _, k := range rep.Keys {
				if k.Custody != wantCustody {
					t.Errorf("%s %s: custody %s, want %s", k.Kid, k.State, k.Custody, wantCustody)
				}
			}
			if st := findSetting(rep.Settings, "SIGNING_KEY_PARAMETER"); st.Value != s.parameter || st.Source != fromRotator {
				t.Errorf("SIGNING_KEY_PARAMETER is %q from %s, want %q from %s", st.Value, st.Source, s.parameter, fromRotator)
			}

			// The text report says the same.
			code, text = s.run(t, "", "status", "--stack", s.stackName)
			s.denyValues.Store(false)
			if code != tt.exit || !containsLine(text, "parameter", tt.status, words[0]) {
				t.Errorf("status exit %d (want %d), or no line with the parameter check %s %q:\n%s", code, tt.exit, tt.status, words[0], text)
			}
			if !tt.limited && !containsLine(text, state.Current.Kid, "CURRENT", "parameter") {
				t.Errorf("the key table does not show CURRENT %s in custody parameter:\n%s", state.Current.Kid, text)
			}
		})
	}
}

// Without Parameter Store custody there is no parameter check, and no
// SIGNING_KEY_PARAMETER setting.
func TestNoParameterCheck(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil, false)
	s.rotate(t)
	_, out := s.run(t, "", "status", "--json", "--secret", s.SecretARN)
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if c := find(rep.Checks, "parameter"); c.Name != "" {
		t.Errorf("a parameter check in secretsmanager custody: %+v", c)
	}
	if st := findSetting(rep.Settings, "SIGNING_KEY_PARAMETER"); st.Name != "" {
		t.Errorf("SIGNING_KEY_PARAMETER is listed in secretsmanager custody: %+v", st)
	}
	for _, k := range rep.Keys {
		if k.Custody != "secretsmanager" {
			t.Errorf("%s: custody %s", k.Kid, k.Custody)
		}
	}
}

func findSetting(ss []setting, name string) setting {
	for _, s := range ss {
		if s.Name == name {
			return s
		}
	}
	return setting{}
}
