package deploy

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"jwks-issuer/pkg/envconfig"
	"jwks-issuer/pkg/oidc"
)

// The OIDC issuer: ISSUER_URL, the published objects below its path, the
// custom domain, the audiences and the optional IAM OIDC provider. The
// deployed values are read back through the functions' own loaders
// (envconfig), so the template and the binaries cannot disagree on what the
// variables mean.

const testCertificate = "arn:aws:acm:us-east-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab"

// issuerExpr is the template's one issuer expression, as ISSUER_URL.
func issuerExpr(t *testing.T, tpl obj) any {
	t.Helper()
	v := get(tpl, "Globals", "Function", "Environment", "Variables", "ISSUER_URL")
	if v == nil {
		t.Fatal("Globals.Function.Environment.Variables.ISSUER_URL is missing: both functions must get the issuer from one expression")
	}
	return v
}

// TestIssuerIsOneExpression: the functions (the authorizer too), the
// IssuerUrl, DiscoveryUrl and JwksUrl outputs and the OIDC provider's Url
// use the same issuer, written once in Globals and repeated verbatim
// elsewhere; no function overrides it.
func TestIssuerIsOneExpression(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	want := render(issuerExpr(t, tpl))
	for _, fn := range []string{"SignerFunction", "RotatorFunction", "AuthorizerFunction"} {
		if got := render(env(t, tpl, fn)["ISSUER_URL"]); got != want {
			t.Errorf("%s: ISSUER_URL = %s, want the Globals expression %s", fn, got, want)
		}
	}
	uses := map[string]any{
		"output IssuerUrl":             get(tpl, "Outputs", "IssuerUrl", "Value"),
		"IamOidcProvider's Url":        get(tpl, "Resources", "IamOidcProvider", "Properties", "Url"),
		"output DiscoveryUrl's issuer": subVarOf(get(tpl, "Outputs", "DiscoveryUrl", "Value"), "Issuer"),
		"output JwksUrl's issuer":      subVarOf(get(tpl, "Outputs", "JwksUrl", "Value"), "Issuer"),
	}
	for what, v := range uses {
		if got := render(v); got != want {
			t.Errorf("%s = %s, want the issuer expression %s", what, got, want)
		}
	}
	// The expression itself: the parameter, else the custom domain, else
	// the distribution's domain.
	if got := render(resolve(t, issuerExpr(t, tpl), map[string]bool{"HasIssuerUrl": true})); got != `{"Ref":"IssuerUrl"}` {
		t.Errorf("with IssuerUrl the issuer is %s, want !Ref IssuerUrl", got)
	}
	for custom, sub := range map[bool]string{true: "https://${CustomDomainName}", false: "https://${Distribution.DomainName}"} {
		got := resolve(t, issuerExpr(t, tpl), map[string]bool{"HasIssuerUrl": false, "HasCustomDomain": custom})
		if s, _ := get(got, "Fn::Sub").(string); s != sub {
			t.Errorf("HasCustomDomain %v: the default issuer is %s, want !Sub %s", custom, render(got), sub)
		}
	}
}

// subVarOf is the named variable of a !Sub [text, {vars}].
func subVarOf(v any, name string) any {
	args, _ := get(v, "Fn::Sub").([]any)
	if len(args) != 2 {
		return nil
	}
	return get(args[1], name)
}

// TestIssuerDeployments: for each way of choosing the issuer, the deployed
// functions agree with the outputs and with the rotator's role: the signer
// and the rotator get the same ISSUER_URL, which is the IssuerUrl output;
// the rotator writes the key set and the discovery document below the
// issuer's path, exactly where its role lets it write, and the JwksUrl and
// DiscoveryUrl outputs are where those objects are served.
func TestIssuerDeployments(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	custom := map[string]string{"CustomDomainName": "id.example.com", "CertificateArn": testCertificate}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for _, tt := range []struct {
		name    string
		params  map[string]string
		issuer  string
		jwksKey string // the key set's object key
	}{
		{"defaults", nil, "https://" + testDistribution, ".well-known/jwks.json"},
		{"custom domain", custom, "https://id.example.com", ".well-known/jwks.json"},
		{"IssuerUrl", with(nil, "IssuerUrl", "https://id.example.com"), "https://id.example.com", ".well-known/jwks.json"},
		{"IssuerUrl over the custom domain", with(custom, "IssuerUrl", "https://auth.example.com"), "https://auth.example.com", ".well-known/jwks.json"},
		{"IssuerUrl with a path", with(custom, "IssuerUrl", "https://id.example.com/tenant"), "https://id.example.com/tenant", "tenant/.well-known/jwks.json"},
		{"a path and a JwksKey", with(custom, "IssuerUrl", "https://id.example.com/tenant", "JwksKey", "keys/set.json"),
			"https://id.example.com/tenant", "tenant/keys/set.json"},
		{"a JwksKey", with(nil, "JwksKey", "keys/set.json"), "https://" + testDistribution, "keys/set.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := deploy(t, tpl, tt.params)
			if failed := d.failedRules(); len(failed) > 0 {
				t.Fatalf("CloudFormation would refuse these parameters: %v", failed)
			}
			signerEnv, rotatorEnv := d.env("SignerFunction"), d.env("RotatorFunction")
			out := func(name string) string {
				v, ok := d.output(name)
				if !ok {
					t.Fatalf("output %s is left out", name)
				}
				return v
			}
			if signerEnv["ISSUER_URL"] != tt.issuer || rotatorEnv["ISSUER_URL"] != tt.issuer || out("IssuerUrl") != tt.issuer {
				t.Errorf("ISSUER_URL: signer %q, rotator %q, output IssuerUrl %q; want all %q",
					signerEnv["ISSUER_URL"], rotatorEnv["ISSUER_URL"], out("IssuerUrl"), tt.issuer)
			}

			signer, err := envconfig.LoadSigner(getenv(signerEnv))
			if err != nil {
				t.Fatalf("the signer refuses the template's environment: %v", err)
			}
			if signer.Issuer.String() != tt.issuer {
				t.Errorf("the signer's issuer is %q, want %q", signer.Issuer, tt.issuer)
			}
			rotator, err := envconfig.LoadRotator(getenv(rotatorEnv))
			if err != nil {
				t.Fatalf("the rotator refuses the template's environment: %v", err)
			}
			if rotator.Issuer.String() != tt.issuer {
				t.Errorf("the rotator's issuer is %q, want %q", rotator.Issuer, tt.issuer)
			}
			if rotator.Key != tt.jwksKey {
				t.Errorf("the rotator writes the key set at %q, want %q", rotator.Key, tt.jwksKey)
			}
			if want := oidcKey(t, tt.issuer, oidc.DiscoveryName); rotator.DiscoveryKey != want {
				t.Errorf("the rotator writes the discovery document at %q, want %q (below the issuer's path)", rotator.DiscoveryKey, want)
			}
			// The template sets what the rotator would choose itself.
			if d.params["JwksKey"] == ".well-known/jwks.json" {
				own, err := envconfig.LoadRotator(getenv(without(rotatorEnv, "JWKS_KEY", "DISCOVERY_KEY")))
				if err != nil || own.Key != rotator.Key || own.DiscoveryKey != rotator.DiscoveryKey {
					t.Errorf("without JWKS_KEY and DISCOVERY_KEY the rotator would write %q and %q (%v); the template says %q and %q",
						own.Key, own.DiscoveryKey, err, rotator.Key, rotator.DiscoveryKey)
				}
			}
			// Where verifiers fetch them.
			if got := out("JwksUrl"); got != rotator.JWKSURL || got != rotator.Issuer.URLOf(rotator.Key) {
				t.Errorf("output JwksUrl = %q; the discovery document names %q, the object is served at %q",
					got, rotator.JWKSURL, rotator.Issuer.URLOf(rotator.Key))
			}
			if got, want := out("DiscoveryUrl"), tt.issuer+"/"+oidc.DiscoveryName; got != want || rotator.Issuer.URLOf(rotator.DiscoveryKey) != want {
				t.Errorf("output DiscoveryUrl = %q, the document is served at %q; want both %q",
					got, rotator.Issuer.URLOf(rotator.DiscoveryKey), want)
			}
			// Exactly where its role lets it write.
			var writes []string
			for _, s := range roleOf(t, tpl, "RotatorFunction") {
				if s.effect == "Allow" && slices.Contains(s.actions, "s3:PutObject") {
					if s.onlyIf != "" {
						t.Errorf("s3:PutObject statement %q is gated on %s", s.sid, s.onlyIf)
					}
					writes = append(writes, d.list(resourceList(s.raw["Resource"]))...)
				}
			}
			bucket := "arn:aws:s3:::" + testBucket + "/"
			if want := sortedStrings(bucket+rotator.Key, bucket+rotator.DiscoveryKey); !slices.Equal(sorted(writes), want) {
				t.Errorf("the rotator may write %v, want exactly %v", writes, want)
			}
		})
	}
}

// oidcKey is the object key of name below the issuer's path.
func oidcKey(t *testing.T, issuer, name string) string {
	t.Helper()
	iss, err := oidc.ParseIssuer("issuer", issuer)
	if err != nil {
		t.Fatal(err)
	}
	return iss.ObjectKey(name)
}

func resourceList(v any) any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func getenv(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

func without(m map[string]string, names ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if !slices.Contains(names, k) {
			out[k] = v
		}
	}
	return out
}

// TestCustomDomain: CustomDomainName and CertificateArn put an alias on the
// distribution, served with the ACM certificate to SNI clients only with
// TLSv1.2_2021; without them the distribution keeps its default
// certificate. One without the other is refused before deployment.
func TestCustomDomain(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	cfg := getObj(resource(t, tpl, "Distribution", "AWS::CloudFront::Distribution"), "Properties", "DistributionConfig")
	for custom, want := range map[bool][2]string{
		true: {`[{"Ref":"CustomDomainName"}]`,
			`{"AcmCertificateArn":{"Ref":"CertificateArn"},"MinimumProtocolVersion":"TLSv1.2_2021","SslSupportMethod":"sni-only"}`},
		false: {"null", `{"CloudFrontDefaultCertificate":true}`},
	} {
		got := resolve(t, cfg, map[string]bool{"HasCustomDomain": custom, "HasAccessLogBucket": false, "JwksCachingEnabled": true})
		if a := render(get(got, "Aliases")); a != want[0] {
			t.Errorf("HasCustomDomain %v: Aliases = %s, want %s", custom, a, want[0])
		}
		if vc := render(get(got, "ViewerCertificate")); vc != want[1] {
			t.Errorf("HasCustomDomain %v: ViewerCertificate = %s, want %s", custom, vc, want[1])
		}
	}

	for _, tt := range []struct {
		domain, cert string
		custom       bool
		refused      string // in the failed assertion's description
	}{
		{"", "", false, ""},
		{"id.example.com", testCertificate, true, ""},
		{"id.example.com", "", false, "CustomDomainName needs CertificateArn"},
		{"", testCertificate, false, "CertificateArn is used only with CustomDomainName"},
	} {
		d := deploy(t, tpl, map[string]string{"CustomDomainName": tt.domain, "CertificateArn": tt.cert})
		failed := d.failedRules()
		switch {
		case tt.refused == "" && len(failed) > 0:
			t.Errorf("domain %q, certificate %q: refused (%v)", tt.domain, tt.cert, failed)
		case tt.refused != "" && !slices.ContainsFunc(failed, func(f string) bool { return strings.Contains(f, tt.refused) }):
			t.Errorf("domain %q, certificate %q: rules failed %v, want one saying %q", tt.domain, tt.cert, failed, tt.refused)
		}
		if got := d.cond("HasCustomDomain"); got != tt.custom {
			t.Errorf("domain %q, certificate %q: HasCustomDomain = %v, want %v", tt.domain, tt.cert, got, tt.custom)
		}
	}
	d := deploy(t, tpl, map[string]string{"CustomDomainName": "id.example.com", "CertificateArn": testCertificate})
	dist := d.eval(getObj(tpl, "Resources", "Distribution", "Properties", "DistributionConfig"))
	if got := render(get(dist, "Aliases")); got != `["id.example.com"]` {
		t.Errorf("deployed Aliases = %s", got)
	}
	if got := get(dist, "ViewerCertificate", "AcmCertificateArn"); got != testCertificate {
		t.Errorf("deployed certificate = %v, want %s", got, testCertificate)
	}
	if got, _ := d.output("DistributionDomainName"); got != testDistribution {
		t.Errorf("output DistributionDomainName = %q, want the distribution's domain (the DNS target)", got)
	}
}

// TestIamOidcProvider: the IAM OIDC identity provider exists only when
// IamOidcProviderAudiences names client ids; its Url is the issuer and its
// client ids are those; its ARN is an output then.
func TestIamOidcProvider(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	p := resource(t, tpl, "IamOidcProvider", "AWS::IAM::OIDCProvider")
	if _, ok := getObj(p, "Properties")["ThumbprintList"]; ok {
		t.Error("IamOidcProvider has a ThumbprintList: AWS checks CloudFront's certificate against its trusted CAs, and a stale thumbprint would only break the fallback")
	}
	if got := get(tpl, "Outputs", "OidcProviderArn", "Condition"); got != p["Condition"] || got == nil {
		t.Errorf("output OidcProviderArn has Condition %v, the provider %v; want the same", got, p["Condition"])
	}
	if !isGetAttArn(get(tpl, "Outputs", "OidcProviderArn", "Value"), "IamOidcProvider") {
		t.Errorf("output OidcProviderArn = %s, want !GetAtt IamOidcProvider.Arn", render(get(tpl, "Outputs", "OidcProviderArn", "Value")))
	}

	d := deploy(t, tpl, nil)
	if d.exists("IamOidcProvider") {
		t.Error("the provider is created with IamOidcProviderAudiences empty")
	}
	if _, ok := d.output("OidcProviderArn"); ok {
		t.Error("output OidcProviderArn is there without a provider")
	}
	for _, tt := range []struct {
		params map[string]string
		url    string
	}{
		{map[string]string{"IamOidcProviderAudiences": "hotsock,sts.amazonaws.com"}, "https://" + testDistribution},
		{map[string]string{"IamOidcProviderAudiences": "hotsock,sts.amazonaws.com", "CustomDomainName": "id.example.com", "CertificateArn": testCertificate},
			"https://id.example.com"},
		{map[string]string{"IamOidcProviderAudiences": "hotsock,sts.amazonaws.com", "IssuerUrl": "https://id.example.com/tenant"},
			"https://id.example.com/tenant"},
	} {
		d := deploy(t, tpl, tt.params)
		if !d.exists("IamOidcProvider") {
			t.Errorf("%v: no provider", tt.params)
			continue
		}
		props := getObj(p, "Properties")
		issuer, _ := d.output("IssuerUrl")
		if got := d.str(props["Url"]); got != tt.url || got != issuer || got != d.env("RotatorFunction")["ISSUER_URL"] {
			t.Errorf("%v: provider Url %q, IssuerUrl %q; want both %q, the functions' ISSUER_URL", tt.params, got, issuer, tt.url)
		}
		if got := d.list(props["ClientIdList"]); !slices.Equal(got, []string{"hotsock", "sts.amazonaws.com"}) {
			t.Errorf("%v: ClientIdList = %v", tt.params, got)
		}
		if _, ok := d.output("OidcProviderArn"); !ok {
			t.Errorf("%v: no OidcProviderArn output", tt.params)
		}
	}
}

// TestAllowedAudiences: AllowedAudiences reaches the signer as
// ALLOWED_AUDIENCES, left unset when empty.
func TestAllowedAudiences(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for value, want := range map[string][]string{"": nil, "hotsock": {"hotsock"}, "hotsock,chat": {"hotsock", "chat"}} {
		e := deploy(t, tpl, map[string]string{"AllowedAudiences": value}).env("SignerFunction")
		if v, ok := e["ALLOWED_AUDIENCES"]; ok != (value != "") || v != value {
			t.Errorf("AllowedAudiences %q: ALLOWED_AUDIENCES = %q (set %v)", value, v, ok)
		}
		cfg, err := envconfig.LoadSigner(getenv(e))
		if err != nil || !slices.Equal(cfg.Audiences, want) {
			t.Errorf("AllowedAudiences %q: the signer allows %v (%v), want %v", value, cfg.Audiences, err, want)
		}
	}
}

// TestIssuerParameterPatterns: the parameters' patterns admit only what the
// functions and AWS accept: IssuerUrl and https://<CustomDomainName> pass
// the issuer rules (and IssuerUrl has at most the one path segment the
// template places objects below), CertificateArn is in us-east-1, client
// ids and audiences have no spaces or empty entries.
func TestIssuerParameterPatterns(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	pattern := func(name string) *regexp.Regexp {
		p, _ := get(tpl, "Parameters", name, "AllowedPattern").(string)
		if p == "" {
			t.Fatalf("parameter %s has no AllowedPattern", name)
		}
		return regexp.MustCompile("^(?:" + p + ")$")
	}
	check := func(name string, value string, want bool) {
		t.Helper()
		if got := pattern(name).MatchString(value); got != want {
			t.Errorf("%s %q: pattern admits it %v, want %v", name, value, got, want)
		}
	}
	issuer, domain := pattern("IssuerUrl"), pattern("CustomDomainName")
	for _, v := range []string{"", "https://id.example.com", "https://id.example.com/tenant", "https://d111111abcdef8.cloudfront.net",
		"https://a-b.example.co.uk/t_1~x.y", "http://id.example.com", "https://id.example.com/", "https://id.example.com:443",
		"https://id.example.com/a/b", "https://id.example.com/a?b", "https://id.example.com/a#b", "https://ID.example.com",
		"https://id.example.com/.", "https://id.example.com/..", "https://id.example.com/%41", "https://user@id.example.com",
		"https://localhost", "https://id..example.com", "https://-id.example.com"} {
		if !issuer.MatchString(v) || v == "" {
			continue
		}
		if _, err := oidc.ParseIssuer("IssuerUrl", v); err != nil {
			t.Errorf("IssuerUrl admits %q, which the functions refuse: %v", v, err)
		}
		if strings.Count(strings.TrimPrefix(v, "https://"), "/") > 1 {
			t.Errorf("IssuerUrl admits %q, with more than one path segment", v)
		}
	}
	for v, want := range map[string]bool{"https://id.example.com": true, "https://id.example.com/tenant": true,
		"https://id.example.com/": false, "https://id.example.com/a/b": false, "http://id.example.com": false,
		"https://id.example.com:8443": false, "https://id.example.com/.well": false} {
		check("IssuerUrl", v, want)
	}
	for _, v := range []string{"id.example.com", "a.b", "x-1.example.org", "ID.example.com", "*.example.com", "example", "id.example.com.", "-a.example.com"} {
		if !domain.MatchString(v) {
			continue
		}
		if _, err := oidc.ParseIssuer("CustomDomainName", "https://"+v); err != nil {
			t.Errorf("CustomDomainName admits %q, whose issuer the functions refuse: %v", v, err)
		}
	}
	check("CustomDomainName", "id.example.com", true)
	check("CustomDomainName", "*.example.com", false)
	check("CertificateArn", testCertificate, true)
	check("CertificateArn", "arn:aws:acm:eu-west-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab", false)
	for _, name := range []string{"AllowedAudiences", "IamOidcProviderAudiences"} {
		check(name, "", true)
		check(name, "hotsock", true)
		check(name, "hotsock,sts.amazonaws.com", true)
		check(name, "hotsock, chat", false)
		check(name, "hotsock,,chat", false)
		check(name, ",hotsock", false)
		check(name, "hotsock,", false)
	}
	check("IamOidcProviderAudiences", strings.Repeat("a,", 99)+"a", true)
	check("IamOidcProviderAudiences", strings.Repeat("a,", 100)+"a", false)
}
