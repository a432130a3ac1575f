package deploy

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/authorizer"
)

// The optional API Gateway Lambda authorizer (DeployAuthorizer,
// docs/verifying.md): it exists only when asked for; its role writes its
// logs and nothing else; its environment is the few variables
// pkg/authorizer reads, with the stack's issuer and k; and CloudFormation
// refuses to deploy it without audiences. The deployed environment is read
// back through the authorizer's own loader (authorizer.Load).

// authorizerResources are the resources DeployAuthorizer adds.
var authorizerResources = []string{"AuthorizerFunction", "AuthorizerLogGroup", "AuthorizerRole"}

// TestAuthorizerIsOptional: the authorizer's function, role and log group,
// and its output, exist only with DeployAuthorizer=true; nothing else in
// the stack changes or refers to them.
func TestAuthorizerIsOptional(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	if got := render(get(tpl, "Conditions", "AuthorizerDeployed")); got != `{"Fn::Equals":[{"Ref":"DeployAuthorizer"},"true"]}` {
		t.Errorf("condition AuthorizerDeployed = %s, want DeployAuthorizer = \"true\"", got)
	}
	if got := strs(get(tpl, "Parameters", "DeployAuthorizer", "AllowedValues")); !slices.Equal(sorted(got), []string{"false", "true"}) {
		t.Errorf("DeployAuthorizer AllowedValues = %v, want true and false", got)
	}
	var gated []string
	for name, r := range getObj(tpl, "Resources") {
		if get(r, "Condition") == "AuthorizerDeployed" {
			gated = append(gated, name)
			continue
		}
		// An unconditional resource that named one of them would fail the
		// deployment without the authorizer.
		text := render(r)
		for _, a := range authorizerResources {
			if regexp.MustCompile(`"` + a + `[".]`).MatchString(text) {
				t.Errorf("resource %s refers to %s, which exists only with DeployAuthorizer", name, a)
			}
		}
	}
	if !slices.Equal(sorted(gated), authorizerResources) {
		t.Errorf("resources with Condition AuthorizerDeployed: %v, want %v", sorted(gated), authorizerResources)
	}
	if got := get(tpl, "Outputs", "AuthorizerFunctionArn", "Condition"); got != "AuthorizerDeployed" {
		t.Errorf("output AuthorizerFunctionArn: Condition = %v, want AuthorizerDeployed", got)
	}
	desc, _ := get(tpl, "Outputs", "AuthorizerFunctionArn", "Description").(string)
	for _, want := range []string{"TOKEN", "REQUEST", "HTTP API", "2.0", "simple responses", "apigateway.amazonaws.com", "lambda:InvokeFunction",
		"docs/examples/authorizer.yaml"} {
		if !strings.Contains(desc, want) {
			t.Errorf("output AuthorizerFunctionArn's description does not say %q: %q", want, desc)
		}
	}

	existing := func(d *deployment) []string {
		var out []string
		for name := range getObj(tpl, "Resources") {
			if d.exists(name) {
				out = append(out, name)
			}
		}
		return sorted(out)
	}
	without := existing(deploy(t, tpl, map[string]string{"AllowedAudiences": "hotsock"}))
	for _, tt := range []struct {
		name     string
		params   map[string]string
		deployed bool
	}{
		{"defaults", nil, false},
		{"audiences only", map[string]string{"AllowedAudiences": "hotsock", "AuthorizerAudiences": "api"}, false},
		{"with the signer's audiences", map[string]string{"DeployAuthorizer": "true", "AllowedAudiences": "hotsock"}, true},
		{"with its own audiences", map[string]string{"DeployAuthorizer": "true", "AuthorizerAudiences": "api"}, true},
		{"KMS custody", map[string]string{"DeployAuthorizer": "true", "AllowedAudiences": "hotsock", "KeyCustody": "KMS"}, true},
	} {
		d := deploy(t, tpl, tt.params)
		if failed := d.failedRules(); len(failed) > 0 {
			t.Errorf("%s: CloudFormation would refuse these parameters: %v", tt.name, failed)
		}
		for _, r := range authorizerResources {
			if d.exists(r) != tt.deployed {
				t.Errorf("%s: %s created %v, want %v", tt.name, r, d.exists(r), tt.deployed)
			}
		}
		arn, ok := d.output("AuthorizerFunctionArn")
		if ok != tt.deployed || ok && arn != d.getAtt("AuthorizerFunction", "Arn") {
			t.Errorf("%s: output AuthorizerFunctionArn = %q (there %v), want the function's ARN only with the authorizer", tt.name, arn, ok)
		}
		want := without
		if tt.deployed {
			want = sorted(append(slices.Clone(without), authorizerResources...))
		}
		if got := existing(d); !slices.Equal(got, want) {
			t.Errorf("%s: the stack holds %v, want %v", tt.name, got, want)
		}
	}
}

// TestAuthorizerFunction: built and run like the other functions, with its
// own role and its own log group, JSON logs kept LogRetentionDays.
func TestAuthorizerFunction(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fn := resource(t, tpl, "AuthorizerFunction", "AWS::Serverless::Function")
	for prop, want := range map[string]string{
		"Role":          `{"Fn::GetAtt":["AuthorizerRole","Arn"]}`,
		"Timeout":       "10",
		"MemorySize":    "256",
		"LoggingConfig": `{"LogFormat":"JSON","LogGroup":{"Ref":"AuthorizerLogGroup"}}`,
	} {
		if got := render(get(fn, "Properties", prop)); got != want {
			t.Errorf("AuthorizerFunction: %s = %s, want %s", prop, got, want)
		}
	}
	if ev := get(fn, "Properties", "Events"); ev != nil {
		t.Errorf("AuthorizerFunction has events %s; the API that attaches it invokes it", render(ev))
	}
	lg := resource(t, tpl, "AuthorizerLogGroup", "AWS::Logs::LogGroup")
	signerLg := resource(t, tpl, "SignerLogGroup", "AWS::Logs::LogGroup")
	if got := get(lg, "Properties", "RetentionInDays"); !isRef(got, "LogRetentionDays") {
		t.Errorf("AuthorizerLogGroup: RetentionInDays = %s, want !Ref LogRetentionDays", render(got))
	}
	for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
		if lg[k] != signerLg[k] {
			t.Errorf("AuthorizerLogGroup: %s = %v, the signer's %v; want the same", k, lg[k], signerLg[k])
		}
	}
}

// TestAuthorizerRole: the authorizer fetches the key set over HTTPS and
// calls no AWS API: its role, trusted by Lambda alone, may write to its log
// group and do nothing else, whatever the other parameters; no resource
// policy of the stack names it.
func TestAuthorizerRole(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for _, s := range roleOf(t, tpl, "AuthorizerFunction") {
		if s.effect != "Allow" {
			t.Errorf("authorizer statement %q: Effect %s", s.sid, s.effect)
		}
		if s.onlyIf != "" {
			t.Errorf("authorizer statement %q is gated on %s; the role grants the same in every stack", s.sid, s.onlyIf)
		}
		if !slices.Equal(sorted(s.actions), []string{"logs:CreateLogStream", "logs:PutLogEvents"}) {
			t.Errorf("authorizer statement %q grants %v; the authorizer may only write its logs", s.sid, s.actions)
		}
		if got := render(s.raw["Resource"]); got != `{"Fn::Sub":"${AuthorizerLogGroup.Arn}:*"}` {
			t.Errorf("authorizer statement %q writes logs to %s; only its own log group", s.sid, got)
		}
		if s.condition != nil {
			t.Errorf("authorizer statement %q has a condition %s", s.sid, render(s.condition))
		}
	}
	role := resource(t, tpl, "AuthorizerRole", "AWS::IAM::Role")
	if got, want := render(get(role, "Properties", "AssumeRolePolicyDocument", "Statement")),
		`[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"}}]`; got != want {
		t.Errorf("AuthorizerRole trusts %s, want %s", got, want)
	}
	for _, name := range []string{"KeySecretPolicy", "JwksBucketPolicy"} {
		if strings.Contains(render(get(tpl, "Resources", name)), "Authorizer") {
			t.Errorf("%s names the authorizer", name)
		}
	}

	for _, params := range []map[string]string{
		{"DeployAuthorizer": "true", "AllowedAudiences": "hotsock"},
		{"DeployAuthorizer": "true", "AuthorizerAudiences": "api", "KeyCustody": "KMS", "AdoptKey": "kms:" + adoptedKMSKey,
			"SecretKmsKeyArn": testSecretKMSKey, "BreakGlassRoleArn": "arn:aws:iam::123456789012:role/break-glass"},
		{"DeployAuthorizer": "true", "AuthorizerAudiences": "api", "KeyCustody": "ParameterStore", "AdoptKey": "ssm:" + hotsockKeyParameter},
	} {
		d := deploy(t, tpl, params)
		want := []string{`Logs ["logs:CreateLogStream","logs:PutLogEvents"] on ["` + d.getAtt("AuthorizerLogGroup", "Arn") + `:*"]`}
		if got := describe(d.grants("AuthorizerFunction")); !slices.Equal(got, want) {
			t.Errorf("%v: the authorizer may %v, want exactly %v", params, got, want)
		}
	}
}

// TestAuthorizerEnvironment: the authorizer gets exactly the variables it
// reads (ISSUER_URL and CLOCK_SKEW_SECONDS from Globals, the same as the
// signer's; ALLOWED_AUDIENCES, REQUIRED_SCOPES and CONTEXT_CLAIMS of its
// own), nothing about the key secret, and no ALLOWED_ALGORITHMS, so that it
// takes the discovery document's. Deployed, its loader reads the stack's
// issuer, k and the audiences, scopes and claims asked for.
func TestAuthorizerEnvironment(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	own := getObj(tpl, "Resources", "AuthorizerFunction", "Properties", "Environment", "Variables")
	var names []string
	for k := range own {
		names = append(names, k)
	}
	if want := []string{"ALLOWED_AUDIENCES", "CONTEXT_CLAIMS", "REQUIRED_SCOPES"}; !slices.Equal(sorted(names), want) {
		t.Errorf("AuthorizerFunction sets %v, want %v", sorted(names), want)
	}
	names = nil
	for k := range getObj(tpl, "Globals", "Function", "Environment", "Variables") {
		names = append(names, k)
	}
	if want := []string{"CLOCK_SKEW_SECONDS", "ISSUER_URL"}; !slices.Equal(sorted(names), want) {
		t.Errorf("Globals give every function, the authorizer too, %v; want only %v, which the authorizer reads", sorted(names), want)
	}
	e, se := env(t, tpl, "AuthorizerFunction"), env(t, tpl, "SignerFunction")
	for _, v := range []string{"ISSUER_URL", "CLOCK_SKEW_SECONDS"} {
		if render(e[v]) != render(se[v]) {
			t.Errorf("AuthorizerFunction: %s = %s, want the signer's %s", v, render(e[v]), render(se[v]))
		}
	}
	if !isRef(e["CLOCK_SKEW_SECONDS"], "ClockSkewSeconds") {
		t.Errorf("AuthorizerFunction: CLOCK_SKEW_SECONDS = %s, want !Ref ClockSkewSeconds (k)", render(e["CLOCK_SKEW_SECONDS"]))
	}
	if got, want := render(e["ALLOWED_AUDIENCES"]), `{"Fn::If":["HasAuthorizerAudiences",{"Ref":"AuthorizerAudiences"},{"Ref":"AllowedAudiences"}]}`; got != want {
		t.Errorf("AuthorizerFunction: ALLOWED_AUDIENCES = %s, want %s", got, want)
	}
	if !comesFrom(tpl, e["ALLOWED_AUDIENCES"], "AuthorizerAudiences") || !comesFrom(tpl, e["REQUIRED_SCOPES"], "AuthorizerRequiredScopes") ||
		!isRef(e["CONTEXT_CLAIMS"], "AuthorizerContextClaims") {
		t.Errorf("AuthorizerFunction: ALLOWED_AUDIENCES = %s, REQUIRED_SCOPES = %s, CONTEXT_CLAIMS = %s; want them from AuthorizerAudiences, AuthorizerRequiredScopes, AuthorizerContextClaims",
			render(e["ALLOWED_AUDIENCES"]), render(e["REQUIRED_SCOPES"]), render(e["CONTEXT_CLAIMS"]))
	}

	base := []string{"ALLOWED_AUDIENCES", "CLOCK_SKEW_SECONDS", "CONTEXT_CLAIMS", "ISSUER_URL"}
	withScopes := sortedStrings(append(slices.Clone(base), "REQUIRED_SCOPES")...)
	for _, tt := range []struct {
		name      string
		params    map[string]string
		vars      []string
		issuer    string
		audiences []string
		scopes    []string
		claims    []string
		skew      time.Duration
	}{
		{"the signer's audiences", map[string]string{"AllowedAudiences": "hotsock,chat"},
			base, "https://" + testDistribution, []string{"hotsock", "chat"}, nil, []string{"sub"}, time.Minute},
		{"its own audiences", map[string]string{"AllowedAudiences": "hotsock", "AuthorizerAudiences": "api"},
			base, "https://" + testDistribution, []string{"api"}, nil, []string{"sub"}, time.Minute},
		{"its own audiences alone", map[string]string{"AuthorizerAudiences": "api,chat"},
			base, "https://" + testDistribution, []string{"api", "chat"}, nil, []string{"sub"}, time.Minute},
		{"scopes, claims and k", map[string]string{"AuthorizerAudiences": "api", "AuthorizerRequiredScopes": "chat:read chat:write",
			"AuthorizerContextClaims": "sub,scope,chat", "ClockSkewSeconds": "5"},
			withScopes, "https://" + testDistribution, []string{"api"}, []string{"chat:read", "chat:write"}, []string{"sub", "scope", "chat"}, 5 * time.Second},
		{"custom domain", map[string]string{"AllowedAudiences": "hotsock", "CustomDomainName": "id.example.com", "CertificateArn": testCertificate},
			base, "https://id.example.com", []string{"hotsock"}, nil, []string{"sub"}, time.Minute},
		{"IssuerUrl with a path", map[string]string{"AllowedAudiences": "hotsock", "IssuerUrl": "https://id.example.com/tenant",
			"CustomDomainName": "id.example.com", "CertificateArn": testCertificate},
			base, "https://id.example.com/tenant", []string{"hotsock"}, nil, []string{"sub"}, time.Minute},
		{"Parameter Store custody, k = 0", map[string]string{"AllowedAudiences": "hotsock", "KeyCustody": "ParameterStore", "ClockSkewSeconds": "0"},
			base, "https://" + testDistribution, []string{"hotsock"}, nil, []string{"sub"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := map[string]string{"DeployAuthorizer": "true"}
			for k, v := range tt.params {
				params[k] = v
			}
			d := deploy(t, tpl, params)
			if failed := d.failedRules(); len(failed) > 0 {
				t.Fatalf("CloudFormation would refuse these parameters: %v", failed)
			}
			e := d.env("AuthorizerFunction")
			var vars []string
			for k := range e {
				vars = append(vars, k)
			}
			if !slices.Equal(sorted(vars), tt.vars) {
				t.Errorf("the authorizer's environment holds %v, want exactly %v", sorted(vars), tt.vars)
			}
			issuer, _ := d.output("IssuerUrl")
			if signer := d.env("SignerFunction")["ISSUER_URL"]; e["ISSUER_URL"] != tt.issuer || signer != tt.issuer || issuer != tt.issuer {
				t.Errorf("ISSUER_URL: authorizer %q, signer %q, output IssuerUrl %q; want all %q", e["ISSUER_URL"], signer, issuer, tt.issuer)
			}
			if k := d.params["ClockSkewSeconds"]; e["CLOCK_SKEW_SECONDS"] != k || d.env("RotatorFunction")["CLOCK_SKEW_SECONDS"] != k {
				t.Errorf("CLOCK_SKEW_SECONDS: authorizer %q, rotator %q; want both k = %s", e["CLOCK_SKEW_SECONDS"],
					d.env("RotatorFunction")["CLOCK_SKEW_SECONDS"], k)
			}

			s, err := authorizer.Load(getenv(e))
			if err != nil {
				t.Fatalf("the authorizer refuses the template's environment: %v", err)
			}
			v := s.Verify
			if v.Issuer != tt.issuer || v.JWKSURL != "" {
				t.Errorf("the authorizer verifies iss %q with the key set from %q; want %q through its discovery document", v.Issuer, v.JWKSURL, tt.issuer)
			}
			if discovery, _ := d.output("DiscoveryUrl"); discovery != v.Issuer+"/.well-known/openid-configuration" {
				t.Errorf("the authorizer reads %s/.well-known/openid-configuration, the stack publishes %s", v.Issuer, discovery)
			}
			if len(v.Algorithms) != 0 {
				t.Errorf("the authorizer accepts only %v; want the discovery document's algorithms", v.Algorithms)
			}
			if !slices.Equal(v.Audiences, tt.audiences) || v.ClockSkew != tt.skew {
				t.Errorf("the authorizer accepts aud %v with a leeway of %v; want %v and %v", v.Audiences, v.ClockSkew, tt.audiences, tt.skew)
			}
			if !slices.Equal(s.RequiredScopes, tt.scopes) || !slices.Equal(s.ContextClaims, tt.claims) {
				t.Errorf("the authorizer requires scopes %v and passes claims %v; want %v and %v", s.RequiredScopes, s.ContextClaims, tt.scopes, tt.claims)
			}
		})
	}
}

// TestAuthorizerNeedsAudiences: DeployAuthorizer without AuthorizerAudiences
// and AllowedAudiences is refused before deployment, as the authorizer
// would refuse it at start.
func TestAuthorizerNeedsAudiences(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for _, tt := range []struct {
		deployed, own, signer string
		refused               bool
	}{
		{"true", "", "", true},
		{"true", "api", "", false},
		{"true", "", "hotsock", false},
		{"true", "api", "hotsock", false},
		{"false", "", "", false},
		{"false", "api", "", false},
	} {
		d := deploy(t, tpl, map[string]string{"DeployAuthorizer": tt.deployed, "AuthorizerAudiences": tt.own, "AllowedAudiences": tt.signer})
		failed := d.failedRules()
		if refused := slices.ContainsFunc(failed, func(f string) bool { return strings.HasPrefix(f, "AuthorizerNeedsAudiences:") }); refused != tt.refused {
			t.Errorf("DeployAuthorizer %s, AuthorizerAudiences %q, AllowedAudiences %q: refused %v (%v), want %v",
				tt.deployed, tt.own, tt.signer, refused, failed, tt.refused)
		}
		if tt.deployed != "true" {
			continue
		}
		_, err := authorizer.Load(getenv(d.env("AuthorizerFunction")))
		if (err != nil) != tt.refused || err != nil && !strings.Contains(err.Error(), "ALLOWED_AUDIENCES") {
			t.Errorf("AuthorizerAudiences %q, AllowedAudiences %q: the authorizer says %v", tt.own, tt.signer, err)
		}
	}
}

// TestAuthorizerParameterPatterns: the authorizer's parameters admit only
// what it accepts: audiences and claims comma-separated without spaces or
// empty entries, scopes separated by single spaces (RFC 6749's scope
// tokens). Repeats pass the patterns and are refused by the authorizer at
// start.
func TestAuthorizerParameterPatterns(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	pattern := func(name string) *regexp.Regexp {
		p, _ := get(tpl, "Parameters", name, "AllowedPattern").(string)
		if p == "" {
			t.Fatalf("parameter %s has no AllowedPattern", name)
		}
		return regexp.MustCompile("^(?:" + p + ")$")
	}
	load := func(kv ...string) (authorizer.Settings, error) {
		e := map[string]string{"ISSUER_URL": "https://id.example.com", "ALLOWED_AUDIENCES": "api"}
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return authorizer.Load(getenv(e))
	}
	for _, tt := range []struct {
		param, variable string
		values          map[string]bool // value -> admitted
		split           func(string) []string
		read            func(authorizer.Settings) []string
	}{
		{"AuthorizerAudiences", "ALLOWED_AUDIENCES",
			map[string]bool{"api": true, "api,chat": true, "https://api.example.com": true,
				"": true, "api, chat": false, "api,,chat": false, ",api": false, "api,": false, " api": false},
			func(v string) []string { return strings.Split(v, ",") },
			func(s authorizer.Settings) []string { return s.Verify.Audiences }},
		{"AuthorizerRequiredScopes", "REQUIRED_SCOPES",
			map[string]bool{"": true, "chat:read": true, "chat:read chat:write": true, "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~": true,
				" chat": false, "chat ": false, "a  b": false, "a\tb": false, "a\nb": false, `a"b`: false, `a\b`: false, "é": false},
			strings.Fields,
			func(s authorizer.Settings) []string { return s.RequiredScopes }},
		{"AuthorizerContextClaims", "CONTEXT_CLAIMS",
			map[string]bool{"sub": true, "sub,scope,chat": true, "https://example.com/tenant": true,
				"": false, "sub,": false, ",sub": false, "sub, scope": false, "sub,,scope": false},
			func(v string) []string { return strings.Split(v, ",") },
			func(s authorizer.Settings) []string { return s.ContextClaims }},
	} {
		re := pattern(tt.param)
		for v, want := range tt.values {
			if got := re.MatchString(v); got != want {
				t.Errorf("%s %q: pattern admits it %v, want %v", tt.param, v, got, want)
			}
			if !want || v == "" {
				continue
			}
			s, err := load(tt.variable, v)
			if err != nil {
				t.Errorf("%s admits %q, which the authorizer refuses: %v", tt.param, v, err)
			} else if got := tt.read(s); !slices.Equal(got, tt.split(v)) {
				t.Errorf("%s %q: the authorizer reads %v", tt.param, v, got)
			}
		}
	}
}
