// Package deploy checks the SAM template at the repository root: cfn-lint must
// report no errors, and the template must keep the structural promises the
// functions rely on (the environment variables of README's configuration
// table, least-privilege roles, a private versioned encrypted bucket, the
// outputs).
//
// The template is loaded by cfn-lint's own decoder (python3 -c, cfnlint.decode)
// and dumped as JSON, so no YAML library is needed here.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const templateFile = "template.yaml"

const pipHint = "pip install cfn-lint"

// repoRoot is the directory holding template.yaml (the parent of deploy/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, templateFile)); err != nil {
		t.Fatalf("%s not found at the repository root: %v", templateFile, err)
	}
	return root
}

// TestCfnLint runs cfn-lint on the template, as written and with the
// optional parameters set, and fails on any finding: make lint fails on
// warnings too. cfn-lint resolves a Ref to a parameter through its Default,
// so each variant is the template with other Defaults.
func TestCfnLint(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatalf("cfn-lint is not on PATH (%v): %s", err, pipHint)
	}
	text, err := os.ReadFile(filepath.Join(root, templateFile))
	if err != nil {
		t.Fatal(err)
	}
	for name, defaults := range map[string]map[string]string{
		"as written":              nil,
		"KMS custody":             {"KeyCustody": "KMS"},
		"Parameter Store custody": {"KeyCustody": "ParameterStore"},
		"adopting a hotsock key":  {"KeyCustody": "ParameterStore", "AdoptKey": `"ssm:` + hotsockKeyParameter + `"`},
		"adopting a KMS key":      {"KeyCustody": "KMS", "AdoptKey": `"kms:` + adoptedKMSKey + `"`},
		"Parameter Store custody, every option": {
			"KeyCustody":                 "ParameterStore",
			"AdoptKey":                   `"ssm:` + hotsockKeyParameter + `"`,
			"AdoptKid":                   "hotsock-key-1",
			"BreakGlassRoleArn":          "arn:aws:iam::123456789012:role/break-glass",
			"SecretKmsKeyArn":            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
			"SignerReservedConcurrency":  `"50"`,
			"RotatorReservedConcurrency": `"2"`,
			"IssuerUrl":                  "https://id.example.com/tenant",
			"CustomDomainName":           "id.example.com",
			"CertificateArn":             "arn:aws:acm:us-east-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab",
			"AllowedAudiences":           "hotsock,chat",
			"IamOidcProviderAudiences":   "hotsock,sts.amazonaws.com",
			"DeployAuthorizer":           `"true"`,
		},
		"every option": {
			"KeyCustody":                    "KMS",
			"AdoptKey":                      `"kms:` + adoptedKMSKey + `"`,
			"AdoptKid":                      "hotsock-key-1",
			"BreakGlassRoleArn":             "arn:aws:iam::123456789012:role/break-glass",
			"SecretKmsKeyArn":               "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
			"SignerReservedConcurrency":     `"50"`,
			"RotatorReservedConcurrency":    `"2"`,
			"AccessLogBucket":               "example-cloudfront-logs",
			"S3AccessLogBucket":             "example-s3-logs",
			"JwksMaxAgeSeconds":             "0",
			"ActivationGraceSeconds":        "0",
			"IssuerUrl":                     "https://id.example.com/tenant",
			"CustomDomainName":              "id.example.com",
			"CertificateArn":                "arn:aws:acm:us-east-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab",
			"AllowedAudiences":              "hotsock,chat",
			"IamOidcProviderAudiences":      "hotsock,sts.amazonaws.com",
			"DeployAuthorizer":              `"true"`,
			"AuthorizerAudiences":           "api,chat",
			"AuthorizerRequiredScopes":      `"chat:read chat:write"`,
			"AuthorizerContextClaims":       "sub,scope,chat",
			"AuthorizerReservedConcurrency": `"100"`,
		},
		"reserved concurrency 0": {"SignerReservedConcurrency": `"0"`, "RotatorReservedConcurrency": `"0"`,
			"DeployAuthorizer": `"true"`, "AllowedAudiences": "hotsock", "AuthorizerReservedConcurrency": `"0"`},
		"authorizer":                         {"DeployAuthorizer": `"true"`, "AllowedAudiences": "hotsock"},
		"authorizer, its own audiences":      {"DeployAuthorizer": `"true"`, "AuthorizerAudiences": "api"},
		"authorizer, KMS custody and scopes": {"DeployAuthorizer": `"true"`, "KeyCustody": "KMS", "AuthorizerAudiences": "api", "AuthorizerRequiredScopes": "chat:read"},
		"custom domain": {
			"CustomDomainName": "id.example.com",
			"CertificateArn":   "arn:aws:acm:us-east-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab",
		},
		"issuer with a path":             {"IssuerUrl": "https://id.example.com/tenant"},
		"alarms by email":                {"AlarmEmail": "ops@example.com"},
		"alarms to a topic":              {"AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops", "CurrentKeyAgeAlarmSeconds": "694800"},
		"alarms to both":                 {"AlarmEmail": "ops@example.com", "AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops"},
		"IAM OIDC provider":              {"IamOidcProviderAudiences": "hotsock"},
		"IAM OIDC provider, custom name": {"IamOidcProviderAudiences": "hotsock", "IssuerUrl": "https://id.example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(root, templateFile)
			if defaults != nil {
				file = filepath.Join(t.TempDir(), templateFile)
				if err := os.WriteFile(file, withDefaults(t, text, defaults), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(bin, file)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err == nil {
				return
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("running cfn-lint: %v\n%s", err, out)
			}
			// cfn-lint's exit code is a bit mask: 1 fatal, 2 error, 4 warning, 8 informational.
			t.Fatalf("cfn-lint %s (%s): exit code %d\n%s", templateFile, name, exit.ExitCode(), out)
		})
	}
}

// withDefaults returns the template text with the Default of each named
// parameter replaced.
func withDefaults(t *testing.T, text []byte, defaults map[string]string) []byte {
	t.Helper()
	lines := strings.Split(string(text), "\n")
	for name, value := range defaults {
		done := false
		for i := 0; i < len(lines) && !done; i++ {
			if lines[i] != "  "+name+":" {
				continue
			}
			for j := i + 1; j < len(lines) && strings.HasPrefix(lines[j], "    "); j++ {
				if strings.HasPrefix(lines[j], "    Default:") {
					lines[j] = "    Default: " + value
					done = true
					break
				}
			}
		}
		if !done {
			t.Fatalf("parameter %s with a Default line not found in %s", name, templateFile)
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// decodeScript loads the template with cfn-lint's decoder (which understands the
// short-form intrinsic tags) and prints it as JSON.
const decodeScript = `
import json, sys
try:
    from cfnlint.decode import decode
except ImportError as e:
    sys.stderr.write("cannot import cfnlint (%s): ` + pipHint + `\n" % e)
    sys.exit(3)
tpl, matches = decode(sys.argv[1])
if matches or tpl is None:
    for m in matches:
        sys.stderr.write(str(m) + "\n")
    sys.exit(1)
json.dump(tpl, sys.stdout)
`

type obj = map[string]any

var (
	loadOnce sync.Once
	loaded   obj
	loadErr  error
)

func loadTemplate(t *testing.T) obj {
	t.Helper()
	root := repoRoot(t)
	loadOnce.Do(func() {
		py, err := exec.LookPath("python3")
		if err != nil {
			loadErr = fmt.Errorf("python3 is not on PATH (%v); it needs the cfn-lint package: %s", err, pipHint)
			return
		}
		cmd := exec.Command(py, "-c", decodeScript, templateFile)
		cmd.Dir = root
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			loadErr = fmt.Errorf("decoding %s with cfnlint.decode: %v\n%s", templateFile, err, stderr.String())
			return
		}
		var tpl obj
		if err := json.Unmarshal(stdout.Bytes(), &tpl); err != nil {
			loadErr = fmt.Errorf("decoding the JSON dump of %s: %v", templateFile, err)
			return
		}
		loaded = tpl
	})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

// --- small accessors over the decoded JSON ------------------------------------

// get follows a path of map keys; nil when any step is missing or not a map.
func get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(obj)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func getObj(v any, path ...string) obj {
	m, _ := get(v, path...).(obj)
	return m
}

// strs reads a string or a list of strings.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func isRef(v any, name string) bool {
	return get(v, "Ref") == name
}

func isTrue(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return false
}

func resource(t *testing.T, tpl obj, name, typ string) obj {
	t.Helper()
	r := getObj(tpl, "Resources", name)
	if r == nil {
		t.Fatalf("resource %s is missing", name)
	}
	if got := get(r, "Type"); got != typ {
		t.Fatalf("resource %s: Type = %v, want %s", name, got, typ)
	}
	return r
}

// --- IAM statements ------------------------------------------------------------

type statement struct {
	raw       obj
	sid       string
	effect    string
	actions   []string
	condition obj
	// onlyIf names the template condition a statement is gated on (Fn::If), "" when unconditional.
	onlyIf string
}

// statements flattens a policy's Statement list, following Fn::If into both
// branches (dropping AWS::NoValue) and remembering the gating condition.
func statements(t *testing.T, doc any, onlyIf string) []statement {
	t.Helper()
	var list []any
	switch x := get(doc, "Statement").(type) {
	case []any:
		list = x
	case obj:
		list = []any{x}
	}
	var out []statement
	var walk func(v any, cond string)
	walk = func(v any, cond string) {
		m, ok := v.(obj)
		if !ok {
			t.Fatalf("policy statement is not an object: %#v", v)
		}
		if isRef(m, "AWS::NoValue") {
			return
		}
		if branches, ok := m["Fn::If"].([]any); ok {
			if len(branches) != 3 {
				t.Fatalf("malformed Fn::If in a policy: %#v", m)
			}
			name, _ := branches[0].(string)
			walk(branches[1], name)
			walk(branches[2], cond)
			return
		}
		if _, ok := m["NotAction"]; ok {
			t.Errorf("statement %v uses NotAction, which grants everything else", m["Sid"])
		}
		if _, ok := m["NotResource"]; ok {
			t.Errorf("statement %v uses NotResource", m["Sid"])
		}
		sid, _ := m["Sid"].(string)
		effect, _ := m["Effect"].(string)
		out = append(out, statement{
			raw: m, sid: sid, effect: effect, actions: strs(m["Action"]),
			condition: getObj(m, "Condition"), onlyIf: cond,
		})
	}
	for _, s := range list {
		walk(s, onlyIf)
	}
	return out
}

// roleOf returns the statements of the role a function runs as. The template
// gives each function an explicit AWS::IAM::Role (Role: !GetAtt X.Arn), so the
// whole grant is visible here without the SAM transform.
func roleOf(t *testing.T, tpl obj, function string) []statement {
	t.Helper()
	fn := resource(t, tpl, function, "AWS::Serverless::Function")
	if p := get(fn, "Properties", "Policies"); p != nil {
		t.Fatalf("%s: SAM Policies are not checked here; grant through its explicit Role", function)
	}
	ga, _ := get(fn, "Properties", "Role", "Fn::GetAtt").([]any)
	if len(ga) != 2 || ga[1] != "Arn" {
		t.Fatalf("%s: Role must be !GetAtt <role>.Arn, got %#v", function, get(fn, "Properties", "Role"))
	}
	roleName, _ := ga[0].(string)
	role := resource(t, tpl, roleName, "AWS::IAM::Role")
	if m := get(role, "Properties", "ManagedPolicyArns"); m != nil {
		t.Errorf("%s: managed policies are not allowed on %s: %v", function, roleName, m)
	}
	if p := get(role, "Properties", "PermissionsBoundary"); p != nil {
		t.Logf("%s: %s has a permissions boundary", function, roleName)
	}
	var out []statement
	pols, _ := get(role, "Properties", "Policies").([]any)
	if len(pols) == 0 {
		t.Fatalf("%s: role %s has no inline policies", function, roleName)
	}
	for _, p := range pols {
		out = append(out, statements(t, get(p, "PolicyDocument"), "")...)
	}
	for _, s := range out {
		if s.effect != "Allow" {
			continue
		}
		for _, a := range s.actions {
			if strings.Contains(a, "*") {
				t.Errorf("%s: statement %q grants the wildcard action %q", function, s.sid, a)
			}
		}
	}
	return out
}

func withAction(ss []statement, action string) []statement {
	var out []statement
	for _, s := range ss {
		if s.effect == "Allow" && slices.Contains(s.actions, action) {
			out = append(out, s)
		}
	}
	return out
}

func conditionValue(s statement, operator, key string) any {
	return get(s.condition, operator, key)
}

// --- tests -----------------------------------------------------------------------

func TestTemplateIsSAM(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	if !slices.Contains(strs(tpl["Transform"]), "AWS::Serverless-2016-10-31") {
		t.Errorf("Transform = %v, want AWS::Serverless-2016-10-31", tpl["Transform"])
	}
	if get(tpl, "Conditions", "IsKms") == nil {
		t.Error("Condition IsKms is missing")
	}
	if rules := getObj(tpl, "Rules"); len(rules) == 0 {
		t.Error("the template has no Rules")
	}
}

func TestParameters(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	// name -> default (README's configuration table; JSON numbers decode as float64).
	want := map[string]any{
		"KeyAlgorithm":           "ES256",
		"KeyCustody":             "SecretsManager",
		"RotationSchedule":       "rate(30 days)",
		"MaxTokenTtlSeconds":     3600.0,
		"KeyCacheSeconds":        60.0,
		"JwksMaxAgeSeconds":      300.0,
		"ActivationGraceSeconds": 86400.0,
		"RetirementGraceSeconds": 3600.0,
		"ClockSkewSeconds":       60.0,
		"KmsDeletionWindowDays":  30.0,
		"JwksKey":                ".well-known/jwks.json",
		// Optional, empty by default (README's configuration table).
		"BreakGlassRoleArn":          "",
		"SecretKmsKeyArn":            "",
		"SignerReservedConcurrency":  "",
		"RotatorReservedConcurrency": "",
		"AccessLogBucket":            "",
		"S3AccessLogBucket":          "",
		"MaxClaimsBytes":             16384.0,
		"KmsMaxBatch":                100.0,
		// The issuer: empty means the distribution's domain, no audience
		// limit, no IAM OIDC provider.
		"IssuerUrl":                "",
		"CustomDomainName":         "",
		"CertificateArn":           "",
		"AllowedAudiences":         "",
		"IamOidcProviderAudiences": "",
		// Nothing adopted unless asked.
		"AdoptKey": "",
		"AdoptKid": "",
		// No authorizer unless asked; then the signer's audiences, no
		// required scopes, sub in the context.
		"DeployAuthorizer":              "false",
		"AuthorizerAudiences":           "",
		"AuthorizerRequiredScopes":      "",
		"AuthorizerContextClaims":       "sub",
		"AuthorizerReservedConcurrency": "",
		// No alarms unless someone is told of them.
		"AlarmEmail":                "",
		"AlarmTopicArn":             "",
		"CurrentKeyAgeAlarmSeconds": 2764800.0,
	}
	for name, def := range want {
		p := getObj(tpl, "Parameters", name)
		if p == nil {
			t.Errorf("parameter %s is missing", name)
			continue
		}
		if d, _ := p["Description"].(string); strings.TrimSpace(d) == "" {
			t.Errorf("parameter %s has no Description", name)
		}
		if got := p["Default"]; got != def {
			t.Errorf("parameter %s: Default = %#v, want %#v", name, got, def)
		}
		validated := false
		for _, k := range []string{"AllowedValues", "AllowedPattern", "MinValue", "MaxValue"} {
			if _, ok := p[k]; ok {
				validated = true
			}
		}
		if !validated {
			t.Errorf("parameter %s has no validation (AllowedValues, AllowedPattern or MinValue/MaxValue)", name)
		}
	}
	if got := strs(get(tpl, "Parameters", "KeyAlgorithm", "AllowedValues")); !slices.Equal(sorted(got), []string{"ES256", "ES384", "RS256"}) {
		t.Errorf("KeyAlgorithm AllowedValues = %v", got)
	}
	if got := strs(get(tpl, "Parameters", "KeyCustody", "AllowedValues")); !slices.Equal(sorted(got), []string{"KMS", "ParameterStore", "SecretsManager"}) {
		t.Errorf("KeyCustody AllowedValues = %v", got)
	}
	bounds := map[string][2]float64{
		"MaxTokenTtlSeconds":    {1, 86400},
		"KeyCacheSeconds":       {0, 3600},
		"JwksMaxAgeSeconds":     {0, 86400},
		"ClockSkewSeconds":      {0, 3600},
		"KmsDeletionWindowDays": {7, 30},
	}
	for name, b := range bounds {
		p := getObj(tpl, "Parameters", name)
		if p["Type"] != "Number" || p["MinValue"] != b[0] || p["MaxValue"] != b[1] {
			t.Errorf("parameter %s: Type %v, MinValue %v, MaxValue %v; want Number, %v, %v",
				name, p["Type"], p["MinValue"], p["MaxValue"], b[0], b[1])
		}
	}
	for _, name := range []string{"ActivationGraceSeconds", "RetirementGraceSeconds"} {
		if p := getObj(tpl, "Parameters", name); p["Type"] != "Number" || p["MinValue"] != 0.0 {
			t.Errorf("parameter %s: Type %v, MinValue %v; want Number, 0", name, p["Type"], p["MinValue"])
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// env merges Globals.Function's environment with the function's own.
func env(t *testing.T, tpl obj, function string) obj {
	t.Helper()
	out := obj{}
	for k, v := range getObj(tpl, "Globals", "Function", "Environment", "Variables") {
		out[k] = v
	}
	fn := resource(t, tpl, function, "AWS::Serverless::Function")
	for k, v := range getObj(fn, "Properties", "Environment", "Variables") {
		out[k] = v
	}
	return out
}

// comesFrom tells whether an environment variable's value is the named
// parameter: !Ref P; !If [<P is not empty>, !Ref P, <fallback>] (an
// optional parameter, unset or defaulted when empty); or a !Sub of ${P}.
// How the fallback and the !Sub are built is checked where they matter
// (issuer_test.go).
func comesFrom(tpl obj, val any, param string) bool {
	if isRef(val, param) {
		return true
	}
	if branches, ok := get(val, "Fn::If").([]any); ok && len(branches) == 3 && isRef(branches[1], param) {
		name, _ := branches[0].(string)
		return render(get(tpl, "Conditions", name)) == render(obj{"Fn::Not": []any{obj{"Fn::Equals": []any{obj{"Ref": param}, ""}}}})
	}
	text := get(val, "Fn::Sub")
	if args, ok := text.([]any); ok && len(args) == 2 {
		text = args[0]
	}
	s, _ := text.(string)
	return strings.Contains(s, "${"+param+"}")
}

// functionProp reads a property of a function, falling back to Globals.
func functionProp(tpl, fn obj, name string) any {
	if v := get(fn, "Properties", name); v != nil {
		return v
	}
	return get(tpl, "Globals", "Function", name)
}

func TestFunctions(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	// Environment variable -> the parameter it must come from (README's configuration table).
	fromParam := map[string]string{
		"MAX_TOKEN_TTL_SECONDS":    "MaxTokenTtlSeconds",
		"KEY_CACHE_SECONDS":        "KeyCacheSeconds",
		"CLOCK_SKEW_SECONDS":       "ClockSkewSeconds",
		"JWKS_KEY":                 "JwksKey",
		"JWKS_MAX_AGE_SECONDS":     "JwksMaxAgeSeconds",
		"KEY_ALGORITHM":            "KeyAlgorithm",
		"ACTIVATION_GRACE_SECONDS": "ActivationGraceSeconds",
		"RETIREMENT_GRACE_SECONDS": "RetirementGraceSeconds",
		"KMS_DELETION_WINDOW_DAYS": "KmsDeletionWindowDays",
		"MAX_CLAIMS_BYTES":         "MaxClaimsBytes",
		"MAX_BATCH_KMS":            "KmsMaxBatch",
		"ISSUER_URL":               "IssuerUrl",
		"ALLOWED_AUDIENCES":        "AllowedAudiences",
		"ADOPT_KEY":                "AdoptKey",
		"ADOPT_KID":                "AdoptKid",
	}
	wantEnv := map[string][]string{
		"SignerFunction": {"SECRET_ID", "MAX_TOKEN_TTL_SECONDS", "KEY_CACHE_SECONDS", "CLOCK_SKEW_SECONDS", "KEY_CUSTODY",
			"MAX_CLAIMS_BYTES", "MAX_BATCH_KMS", "ISSUER_URL", "ALLOWED_AUDIENCES", "SIGNING_KEY_PARAMETER"},
		"RotatorFunction": {"SECRET_ID", "JWKS_BUCKET", "JWKS_KEY", "JWKS_MAX_AGE_SECONDS", "KEY_ALGORITHM",
			"KEY_CUSTODY", "ACTIVATION_GRACE_SECONDS", "RETIREMENT_GRACE_SECONDS", "CLOCK_SKEW_SECONDS",
			"MAX_TOKEN_TTL_SECONDS", "KEY_CACHE_SECONDS", "KMS_DELETION_WINDOW_DAYS", "SIGNER_ROLE_ARN", "ROTATOR_ROLE_ARN",
			"ISSUER_URL", "DISCOVERY_KEY", "SIGNING_KEY_PARAMETER", "ADOPT_KEY", "ADOPT_KID"},
	}
	for function, vars := range wantEnv {
		e := env(t, tpl, function)
		for _, v := range vars {
			val, ok := e[v]
			if !ok {
				t.Errorf("%s: environment variable %s is not set", function, v)
				continue
			}
			if p, ok := fromParam[v]; ok && !comesFrom(tpl, val, p) {
				t.Errorf("%s: %s = %s, want it from parameter %s", function, v, render(val), p)
			}
		}
		if !isRef(e["SECRET_ID"], "KeySecret") {
			t.Errorf("%s: SECRET_ID = %#v, want !Ref KeySecret", function, e["SECRET_ID"])
		}
	}
	// How each function is built and run (the authorizer's environment is
	// checked in authorizer_test.go).
	for _, function := range []string{"SignerFunction", "RotatorFunction", "AuthorizerFunction"} {
		fn := resource(t, tpl, function, "AWS::Serverless::Function")
		if get(fn, "Metadata", "BuildMethod") != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want makefile", function, get(fn, "Metadata", "BuildMethod"))
		}
		checks := map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": "."}
		for prop, want := range checks {
			if got := functionProp(tpl, fn, prop); got != want {
				t.Errorf("%s: %s = %#v, want %#v", function, prop, got, want)
			}
		}
		if got := strs(functionProp(tpl, fn, "Architectures")); !slices.Equal(got, []string{"arm64"}) {
			t.Errorf("%s: Architectures = %v, want [arm64]", function, got)
		}
	}
	// The signer and the rotator read T, S, k, the issuer and the key
	// secret's variables from the same expressions (the authorizer reads
	// only the issuer and k, authorizer_test.go).
	se, re := env(t, tpl, "SignerFunction"), env(t, tpl, "RotatorFunction")
	for _, v := range []string{"SECRET_ID", "MAX_TOKEN_TTL_SECONDS", "KEY_CACHE_SECONDS", "CLOCK_SKEW_SECONDS", "KEY_CUSTODY",
		"SIGNING_KEY_PARAMETER", "ISSUER_URL"} {
		if render(se[v]) != render(re[v]) {
			t.Errorf("%s: the signer's is %s, the rotator's %s; want the same", v, render(se[v]), render(re[v]))
		}
	}
	if e := env(t, tpl, "RotatorFunction"); !isRef(e["JWKS_BUCKET"], "JwksBucket") {
		t.Errorf("RotatorFunction: JWKS_BUCKET = %#v, want !Ref JwksBucket", e["JWKS_BUCKET"])
	}
	e := env(t, tpl, "RotatorFunction")
	for v, role := range map[string]string{"SIGNER_ROLE_ARN": "SignerRole", "ROTATOR_ROLE_ARN": "RotatorRole"} {
		if !isGetAttArn(e[v], role) {
			t.Errorf("RotatorFunction: %s = %#v, want !GetAtt %s.Arn (the roles the KMS keys' policy lets sign)", v, e[v], role)
		}
	}

	// The cleanup schedule.
	found := false
	for _, ev := range getObj(tpl, "Resources", "RotatorFunction", "Properties", "Events") {
		typ := get(ev, "Type")
		if typ != "Schedule" && typ != "ScheduleV2" {
			continue
		}
		var input obj
		if s, ok := get(ev, "Properties", "Input").(string); ok && json.Unmarshal([]byte(s), &input) == nil &&
			input["action"] == "cleanup" {
			found = true
			expr := get(ev, "Properties", "Schedule")
			if typ == "ScheduleV2" {
				expr = get(ev, "Properties", "ScheduleExpression")
			}
			if expr != "rate(1 hour)" {
				t.Errorf("cleanup schedule = %v, want rate(1 hour)", expr)
			}
		}
	}
	if !found {
		t.Error(`RotatorFunction has no schedule event with Input {"action":"cleanup"}`)
	}
}

func TestSignerRoleIsReadOnly(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	ss := roleOf(t, tpl, "SignerFunction")
	allowed := []string{"secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Sign", "kms:Decrypt", "logs:CreateLogStream", "logs:PutLogEvents"}
	for _, s := range ss {
		if s.effect != "Allow" {
			continue
		}
		for _, a := range s.actions {
			if !slices.Contains(allowed, a) {
				t.Errorf("signer statement %q grants %s; the signer may only read its key (and sign with KMS)", s.sid, a)
			}
		}
	}
	for _, s := range ss {
		for _, a := range s.actions {
			if strings.HasPrefix(a, "logs:") && s.effect == "Allow" {
				if get(s.raw, "Resource", "Fn::Sub") == nil {
					t.Errorf("signer statement %q writes logs to %#v; only its own log group", s.sid, s.raw["Resource"])
				}
			}
		}
	}

	reads := withAction(ss, "secretsmanager:GetSecretValue")
	if len(reads) == 0 {
		t.Fatal("the signer cannot read its secret")
	}
	for _, s := range reads {
		// Parameter Store custody reads the parameter alone (custody_test.go).
		if s.onlyIf != "SignerReadsSecret" {
			t.Errorf("signer GetSecretValue statement %q is gated on %q, want SignerReadsSecret", s.sid, s.onlyIf)
		}
		if !isRef(s.raw["Resource"], "KeySecret") {
			t.Errorf("signer GetSecretValue Resource = %#v, want only !Ref KeySecret", s.raw["Resource"])
		}
		if v := conditionValue(s, "StringEquals", "secretsmanager:VersionStage"); v != "AWSCURRENT" {
			t.Errorf("signer GetSecretValue lacks Condition StringEquals secretsmanager:VersionStage = AWSCURRENT (got %#v)", s.condition)
		}
	}

	sign := withAction(ss, "kms:Sign")
	if len(sign) == 0 {
		t.Error("the signer cannot sign with KMS keys under KMS custody")
	}
	for _, s := range sign {
		if s.onlyIf == "AdoptsKmsKey" {
			continue // the adopted key, named alone (custody_test.go)
		}
		if s.onlyIf != "IsKms" {
			t.Errorf("signer kms:Sign statement %q is not gated on IsKms", s.sid)
		}
		if !isRef(conditionValue(s, "StringEquals", "aws:ResourceTag/jwks-issuer:stack"), "AWS::StackName") {
			t.Errorf("signer kms:Sign statement %q is not limited to keys tagged jwks-issuer:stack = the stack name", s.sid)
		}
	}
	for _, s := range ss {
		for _, a := range s.actions {
			if strings.HasPrefix(a, "ssm:") && s.onlyIf != "IsParameterStore" {
				t.Errorf("signer statement %q grants %s without the IsParameterStore condition", s.sid, a)
			}
		}
	}
}

func TestRotatorRole(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	ss := roleOf(t, tpl, "RotatorFunction")

	for _, a := range []string{
		"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
		"secretsmanager:UpdateSecretVersionStage", "secretsmanager:TagResource", "secretsmanager:UntagResource",
		"s3:GetObject", "s3:PutObject", "s3:ListBucket",
	} {
		if len(withAction(ss, a)) == 0 {
			t.Errorf("the rotator lacks %s", a)
		}
	}
	if len(withAction(ss, "secretsmanager:GetRandomPassword")) > 0 {
		t.Error("the rotator does not need secretsmanager:GetRandomPassword")
	}
	for _, s := range ss {
		if s.effect != "Allow" {
			continue
		}
		for _, a := range s.actions {
			if strings.HasPrefix(a, "secretsmanager:") && !isRef(s.raw["Resource"], "KeySecret") {
				t.Errorf("rotator statement %q: %s on %#v, want only !Ref KeySecret", s.sid, a, s.raw["Resource"])
			}
			if strings.HasPrefix(a, "kms:") && s.onlyIf != "IsKms" && s.onlyIf != "HasSecretKmsKey" && s.onlyIf != "AdoptsKmsKey" {
				t.Errorf("rotator statement %q grants %s without the IsKms (or HasSecretKmsKey, AdoptsKmsKey) condition", s.sid, a)
			}
			if strings.HasPrefix(a, "ssm:") && s.onlyIf != "IsParameterStore" && s.onlyIf != "IsAdoptSsm" {
				t.Errorf("rotator statement %q grants %s without the IsParameterStore (or IsAdoptSsm) condition", s.sid, a)
			}
			if strings.HasPrefix(a, "s3:") {
				for _, r := range resourcesOf(s.raw["Resource"]) {
					if !strings.Contains(r, "JwksBucket") {
						t.Errorf("rotator statement %q: %s on %#v, want only the JWKS bucket", s.sid, a, r)
					}
				}
			}
		}
	}
	// Key operations only on this stack's keys; creation only with this stack's tag.
	for _, a := range []string{"kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:DisableKey", "kms:ScheduleKeyDeletion"} {
		got := withAction(ss, a)
		if len(got) == 0 {
			t.Errorf("the rotator lacks %s", a)
		}
		for _, s := range got {
			if s.onlyIf == "AdoptsKmsKey" {
				continue // the adopted key, named alone (custody_test.go)
			}
			if !isRef(conditionValue(s, "StringEquals", "aws:ResourceTag/jwks-issuer:stack"), "AWS::StackName") {
				t.Errorf("rotator %s (statement %q) is not limited to keys tagged with the stack name", a, s.sid)
			}
		}
	}
	for _, a := range []string{"kms:CreateKey", "kms:TagResource"} {
		got := withAction(ss, a)
		if len(got) == 0 {
			t.Errorf("the rotator lacks %s", a)
		}
		for _, s := range got {
			if !isRef(conditionValue(s, "StringEquals", "aws:RequestTag/jwks-issuer:stack"), "AWS::StackName") {
				t.Errorf("rotator %s (statement %q) does not require the request tag jwks-issuer:stack = the stack name", a, s.sid)
			}
		}
	}
	if len(withAction(ss, "kms:ListKeys")) == 0 {
		t.Error("the rotator lacks kms:ListKeys (needed to find orphaned keys)")
	}

	perm := resource(t, tpl, "RotatorInvokePermission", "AWS::Lambda::Permission")
	if get(perm, "Properties", "Principal") != "secretsmanager.amazonaws.com" ||
		!isRef(get(perm, "Properties", "SourceAccount"), "AWS::AccountId") {
		t.Errorf("RotatorInvokePermission must let secretsmanager.amazonaws.com of this account invoke the rotator: %#v", perm["Properties"])
	}
	rs := resource(t, tpl, "KeyRotationSchedule", "AWS::SecretsManager::RotationSchedule")
	if !slices.Contains(strs(rs["DependsOn"]), "RotatorInvokePermission") {
		t.Error("KeyRotationSchedule must depend on RotatorInvokePermission")
	}
	if !isRef(get(rs, "Properties", "RotationRules", "ScheduleExpression"), "RotationSchedule") {
		t.Error("KeyRotationSchedule: RotationRules.ScheduleExpression must be !Ref RotationSchedule")
	}
	if !isRef(get(rs, "Properties", "SecretId"), "KeySecret") {
		t.Error("KeyRotationSchedule: SecretId must be !Ref KeySecret")
	}
	if !isTrue(get(rs, "Properties", "RotateImmediatelyOnUpdate")) {
		t.Error("KeyRotationSchedule: RotateImmediatelyOnUpdate must be true")
	}
}

// resourcesOf renders a statement's Resource entries as strings for inspection.
func resourcesOf(v any) []string {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var out []string
	for _, r := range list {
		b, _ := json.Marshal(r)
		out = append(out, string(b))
	}
	return out
}

func TestBucket(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	b := resource(t, tpl, "JwksBucket", "AWS::S3::Bucket")
	pab := getObj(b, "Properties", "PublicAccessBlockConfiguration")
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if !isTrue(pab[k]) {
			t.Errorf("JwksBucket: PublicAccessBlockConfiguration.%s = %v, want true", k, pab[k])
		}
	}
	if got := get(b, "Properties", "VersioningConfiguration", "Status"); got != "Enabled" {
		t.Errorf("JwksBucket: versioning = %v, want Enabled", got)
	}
	rules, _ := get(b, "Properties", "BucketEncryption", "ServerSideEncryptionConfiguration").([]any)
	encrypted := false
	for _, r := range rules {
		if alg := get(r, "ServerSideEncryptionByDefault", "SSEAlgorithm"); alg == "AES256" || alg == "aws:kms" {
			encrypted = true
		}
	}
	if !encrypted {
		t.Error("JwksBucket: no default encryption (BucketEncryption SSEAlgorithm AES256 or aws:kms)")
	}

	// Only CloudFront, only for this distribution, may read.
	pol := resource(t, tpl, "JwksBucketPolicy", "AWS::S3::BucketPolicy")
	ok := false
	for _, s := range statements(t, get(pol, "Properties", "PolicyDocument"), "") {
		if s.effect != "Allow" {
			continue
		}
		if get(s.raw, "Principal", "Service") != "cloudfront.amazonaws.com" || !slices.Equal(s.actions, []string{"s3:GetObject"}) {
			t.Errorf("bucket policy statement %q allows %v to %#v; only cloudfront.amazonaws.com s3:GetObject", s.sid, s.actions, s.raw["Principal"])
			continue
		}
		src, _ := get(conditionValue(s, "StringEquals", "AWS:SourceArn"), "Fn::Sub").(string)
		if !strings.Contains(src, "${Distribution}") {
			t.Errorf("bucket policy statement %q: AWS:SourceArn must be the distribution's ARN, got %#v", s.sid, s.condition)
			continue
		}
		ok = true
	}
	if !ok {
		t.Error("the bucket policy does not let the distribution read objects")
	}
}

func TestOutputs(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for _, name := range []string{"SignerFunctionArn", "RotatorFunctionArn", "JwksUrl", "SecretArn", "KeyAlgorithm", "JwksBucketName",
		"DistributionId", "DistributionDomainName", "IssuerUrl", "DiscoveryUrl", "OidcProviderArn", "AuthorizerFunctionArn"} {
		if get(tpl, "Outputs", name, "Value") == nil {
			t.Errorf("output %s is missing", name)
		}
	}
	// <issuer>/<JwksKey> and <issuer>/.well-known/openid-configuration
	// (the issuer is checked in TestIssuerIsOneExpression, the values in
	// TestIssuerDeployments).
	for name, want := range map[string]string{"JwksUrl": "${Issuer}/${JwksKey}", "DiscoveryUrl": "${Issuer}/.well-known/openid-configuration"} {
		args, _ := get(tpl, "Outputs", name, "Value", "Fn::Sub").([]any)
		if len(args) != 2 || args[0] != want {
			t.Errorf("%s = %s, want !Sub [%s, {Issuer: <the issuer>}]", name, render(get(tpl, "Outputs", name, "Value")), want)
		}
	}
}
