package deploy

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"jwks-issuer/pkg/envconfig"
)

// Parameter Store custody and adoption (docs/lifecycle.md): what each
// custody and each AdoptKey gives the functions, read back through their
// own loaders (envconfig), and what the deployed roles grant, statement by
// statement, evaluated for those parameters.

const (
	// A hotsock jwt-issuer's key: /jwt-issuer/<its stack ARN's sixth
	// ":"-field>/private-key, whose kid is the stack's uuid.
	hotsockKeyParameter = "/jwt-issuer/stack/chat/0a1b2c3d-4e5f-6789-abcd-ef0123456789/private-key"
	hotsockKid          = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
	adoptedKMSKey       = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	adoptedKMSKid       = "1234abcd-12ab-34cd-56ef-1234567890ab"
	testSecretKMSKey    = "arn:aws:kms:eu-west-1:123456789012:key/99999999-12ab-34cd-56ef-1234567890ab"
)

// The stack's signing-key parameter for the test stack name, and the ARN
// IAM knows it by: "parameter" followed by the name, whose leading "/" is
// the ARN's one separator.
const (
	signingKeyParameter    = "/jwks-issuer/jwks-issuer/signing-key"
	signingKeyParameterArn = "arn:aws:ssm:eu-west-1:123456789012:parameter/jwks-issuer/jwks-issuer/signing-key"
)

// grant is one Allow statement of a deployed role: its actions and
// resources sorted, its condition as JSON.
type grant struct {
	sid       string
	actions   []string
	resources []string
	condition string
}

// key identifies a grant by what it allows (not its Sid).
func (g grant) key() string {
	return render([]any{g.actions, g.resources, g.condition})
}

// grants are the Allow statements of a function's role as deployed.
func (d *deployment) grants(function string) []grant {
	d.t.Helper()
	ga, _ := get(d.tpl, "Resources", function, "Properties", "Role", "Fn::GetAtt").([]any)
	if len(ga) != 2 {
		d.t.Fatalf("%s: Role is not !GetAtt <role>.Arn", function)
	}
	role, _ := ga[0].(string)
	var out []grant
	pols, _ := get(d.tpl, "Resources", role, "Properties", "Policies").([]any)
	for _, p := range pols {
		doc := d.eval(get(p, "PolicyDocument"))
		list, _ := get(doc, "Statement").([]any)
		for _, s := range list {
			if get(s, "Effect") != "Allow" {
				continue
			}
			sid, _ := get(s, "Sid").(string)
			g := grant{sid: sid, actions: sorted(strs(get(s, "Action"))), resources: sorted(strs(get(s, "Resource")))}
			if c := get(s, "Condition"); c != nil {
				g.condition = render(c)
			}
			out = append(out, g)
		}
	}
	return out
}

// withPrefix are the grants with an action of the service prefix ("ssm:").
func withPrefix(gs []grant, prefix string) []grant {
	var out []grant
	for _, g := range gs {
		if slices.ContainsFunc(g.actions, func(a string) bool { return strings.HasPrefix(a, prefix) }) {
			out = append(out, g)
		}
	}
	return out
}

// extra are the grants of gs that base lacks.
func extra(gs, base []grant) []grant {
	have := map[string]bool{}
	for _, g := range base {
		have[g.key()] = true
	}
	var out []grant
	for _, g := range gs {
		if !have[g.key()] {
			out = append(out, g)
		}
	}
	return out
}

func describe(gs []grant) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.sid+" "+render(g.actions)+" on "+render(g.resources))
	}
	return out
}

// TestParameterStoreCustody: KeyCustody=ParameterStore gives both functions
// KEY_CUSTODY=parameterstore and the same SIGNING_KEY_PARAMETER, which their
// loaders accept; the signer may then read that one parameter and nothing
// in Secrets Manager or KMS (it makes no such call), and the rotator may
// read and write that one parameter. In the other custodies neither
// function has the variable or any Parameter Store grant.
func TestParameterStoreCustody(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	if !strings.HasPrefix(signingKeyParameterArn, "arn:aws:ssm:eu-west-1:123456789012:parameter/") ||
		signingKeyParameterArn != "arn:aws:ssm:eu-west-1:123456789012:parameter"+signingKeyParameter {
		t.Fatal("the test's ARN is not parameter<name>")
	}
	for custody, env := range map[string]envconfig.Custody{
		"SecretsManager": envconfig.CustodySecretsManager,
		"KMS":            envconfig.CustodyKMS,
		"ParameterStore": envconfig.CustodyParameterStore,
	} {
		for _, secretKey := range []string{"", testSecretKMSKey} {
			name := custody
			if secretKey != "" {
				name += ", SecretKmsKeyArn"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ps := custody == "ParameterStore"
				d := deploy(t, tpl, map[string]string{"KeyCustody": custody, "SecretKmsKeyArn": secretKey})
				if failed := d.failedRules(); len(failed) > 0 {
					t.Fatalf("CloudFormation would refuse these parameters: %v", failed)
				}
				se, re := d.env("SignerFunction"), d.env("RotatorFunction")
				for fn, e := range map[string]map[string]string{"signer": se, "rotator": re} {
					if e["KEY_CUSTODY"] != string(env) {
						t.Errorf("%s: KEY_CUSTODY = %q, want %q", fn, e["KEY_CUSTODY"], env)
					}
					v, ok := e["SIGNING_KEY_PARAMETER"]
					if ok != ps || ps && v != signingKeyParameter {
						t.Errorf("%s: SIGNING_KEY_PARAMETER = %q (set %v), want %q only in Parameter Store custody", fn, v, ok, signingKeyParameter)
					}
				}
				signer, err := envconfig.LoadSigner(getenv(se))
				if err != nil {
					t.Fatalf("the signer refuses the template's environment: %v", err)
				}
				rotator, err := envconfig.LoadRotator(getenv(re))
				if err != nil {
					t.Fatalf("the rotator refuses the template's environment: %v", err)
				}
				want := ""
				if ps {
					want = signingKeyParameter
				}
				if signer.Custody != env || rotator.Custody != env || signer.Parameter != want || rotator.Parameter != want {
					t.Errorf("custody %s/%s, parameter %q/%q (signer/rotator); want %s, %q", signer.Custody, rotator.Custody,
						signer.Parameter, rotator.Parameter, env, want)
				}
				if out, ok := d.output("SigningKeyParameterName"); ok != ps || out != want {
					t.Errorf("output SigningKeyParameterName = %q (there %v), want %q only in Parameter Store custody", out, ok, want)
				}

				sg, rg := d.grants("SignerFunction"), d.grants("RotatorFunction")
				wantSigner, wantRotator := []string(nil), []string(nil)
				if ps {
					wantSigner = []string{`ReadSigningKeyParameter ["ssm:GetParameter"] on ["` + signingKeyParameterArn + `"]`}
					wantRotator = []string{`KeepSigningKeyParameter ["ssm:GetParameter","ssm:PutParameter"] on ["` + signingKeyParameterArn + `"]`}
				}
				if got := describe(withPrefix(sg, "ssm:")); !slices.Equal(got, wantSigner) {
					t.Errorf("the signer's Parameter Store grants are %v, want %v", got, wantSigner)
				}
				if got := describe(withPrefix(rg, "ssm:")); !slices.Equal(got, wantRotator) {
					t.Errorf("the rotator's Parameter Store grants are %v, want %v", got, wantRotator)
				}
				for _, g := range withPrefix(sg, "ssm:") {
					if g.condition != "" {
						t.Errorf("signer statement %s has a condition %s", g.sid, g.condition)
					}
				}
				// The signer reads the parameter alone.
				sm, kms := withPrefix(sg, "secretsmanager:"), withPrefix(sg, "kms:")
				switch {
				case ps && (len(sm) > 0 || len(kms) > 0):
					t.Errorf("in Parameter Store custody the signer may still %v", describe(append(sm, kms...)))
				case !ps && len(sm) != 1:
					t.Errorf("the signer's Secrets Manager grants are %v, want ReadCurrentKey", describe(sm))
				case !ps && secretKey != "" && !slices.ContainsFunc(kms, func(g grant) bool { return slices.Contains(g.actions, "kms:Decrypt") }):
					t.Errorf("the signer cannot decrypt its secret with SecretKmsKeyArn: %v", describe(kms))
				}
				// The rotator still rotates the secret.
				if !slices.ContainsFunc(rg, func(g grant) bool { return slices.Contains(g.actions, "secretsmanager:PutSecretValue") }) {
					t.Error("the rotator may not write its secret")
				}
			})
		}
	}
}

// TestSigningKeyParameterName: the parameter's name is one Parameter Store
// accepts for any stack name: fully qualified, of the allowed characters,
// not under a reserved prefix, within the depth limit.
func TestSigningKeyParameterName(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	d := deploy(t, tpl, map[string]string{"KeyCustody": "ParameterStore"})
	name := d.env("SignerFunction")["SIGNING_KEY_PARAMETER"]
	valid := regexp.MustCompile(`^(/[a-zA-Z0-9_.-]+)+$`)
	lower := strings.ToLower(name)
	if !valid.MatchString(name) || strings.HasPrefix(lower, "/aws") || strings.HasPrefix(lower, "/ssm") ||
		strings.Count(name, "/") > 15 {
		t.Errorf("SIGNING_KEY_PARAMETER %q is not a valid fully qualified parameter name", name)
	}
	// Stack names are [A-Za-z][-A-Za-z0-9]*, which the name admits.
	if got := strings.Replace(name, "jwks-issuer/signing-key", "My-Stack-2/signing-key", 1); !valid.MatchString(got) {
		t.Errorf("%q is not valid", got)
	}
}

// TestAdoption: AdoptKey and AdoptKid reach the rotator as ADOPT_KEY and
// ADOPT_KID, which its loader reads as the adoption meant; and each kind of
// AdoptKey adds exactly the grants that name its key, only with its prefix:
// ssm: lets the rotator read that one parameter, kms: (under KMS custody)
// lets the rotator describe, read and sign with that one key and the signer
// sign with it. Nothing else changes.
func TestAdoption(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	const adoptedParameterArn = "arn:aws:ssm:eu-west-1:123456789012:parameter" + hotsockKeyParameter
	algs := `{"StringEquals":{"kms:SigningAlgorithm":["ECDSA_SHA_256","ECDSA_SHA_384","RSASSA_PKCS1_V1_5_SHA_256"]}}`
	for _, tt := range []struct {
		name, custody, key, kid string
		from, wantName, wantKid string // the rotator's adoption; from "" for none
		refused                 string // the rotator's start-up error
		signer, rotator         []string
	}{
		{name: "nothing", custody: "SecretsManager"},
		{name: "hotsock key, Secrets Manager custody", custody: "SecretsManager", key: "ssm:" + hotsockKeyParameter,
			from: "ssm", wantName: hotsockKeyParameter, wantKid: hotsockKid,
			rotator: []string{`ReadAdoptedKeyParameter ["ssm:GetParameter"] on ["` + adoptedParameterArn + `"]`}},
		{name: "hotsock key, Parameter Store custody", custody: "ParameterStore", key: "ssm:" + hotsockKeyParameter,
			from: "ssm", wantName: hotsockKeyParameter, wantKid: hotsockKid,
			rotator: []string{`ReadAdoptedKeyParameter ["ssm:GetParameter"] on ["` + adoptedParameterArn + `"]`}},
		{name: "hotsock key, KMS custody, own kid", custody: "KMS", key: "ssm:" + hotsockKeyParameter, kid: "key-1",
			from: "ssm", wantName: hotsockKeyParameter, wantKid: "key-1",
			rotator: []string{`ReadAdoptedKeyParameter ["ssm:GetParameter"] on ["` + adoptedParameterArn + `"]`}},
		{name: "KMS key", custody: "KMS", key: "kms:" + adoptedKMSKey,
			from: "kms", wantName: adoptedKMSKey, wantKid: adoptedKMSKid,
			signer:  []string{`SignWithAdoptedKey ["kms:Sign"] on ["` + adoptedKMSKey + `"]`},
			rotator: []string{`UseAdoptedKey ["kms:DescribeKey","kms:GetPublicKey","kms:Sign"] on ["` + adoptedKMSKey + `"]`}},
		{name: "KMS key in another partition", custody: "KMS", key: "kms:arn:aws-cn:kms:cn-north-1:123456789012:key/abcd",
			from: "kms", wantName: "arn:aws-cn:kms:cn-north-1:123456789012:key/abcd", wantKid: "abcd",
			signer:  []string{`SignWithAdoptedKey ["kms:Sign"] on ["arn:aws-cn:kms:cn-north-1:123456789012:key/abcd"]`},
			rotator: []string{`UseAdoptedKey ["kms:DescribeKey","kms:GetPublicKey","kms:Sign"] on ["arn:aws-cn:kms:cn-north-1:123456789012:key/abcd"]`}},
		// The template cannot refuse this (Rules cannot look inside a
		// string): it grants nothing, and the rotator refuses to start.
		{name: "KMS key, Secrets Manager custody", custody: "SecretsManager", key: "kms:" + adoptedKMSKey, refused: "only under KEY_CUSTODY=kms"},
		{name: "KMS key, Parameter Store custody", custody: "ParameterStore", key: "kms:" + adoptedKMSKey, refused: "only under KEY_CUSTODY=kms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := deploy(t, tpl, map[string]string{"KeyCustody": tt.custody, "AdoptKey": tt.key, "AdoptKid": tt.kid})
			if failed := d.failedRules(); len(failed) > 0 {
				t.Fatalf("CloudFormation would refuse these parameters: %v", failed)
			}
			re := d.env("RotatorFunction")
			for v, want := range map[string]string{"ADOPT_KEY": tt.key, "ADOPT_KID": tt.kid} {
				if got, ok := re[v]; ok != (want != "") || got != want {
					t.Errorf("%s = %q (set %v), want %q", v, got, ok, want)
				}
			}
			for _, v := range []string{"ADOPT_KEY", "ADOPT_KID"} {
				if _, ok := d.env("SignerFunction")[v]; ok {
					t.Errorf("the signer has %s", v)
				}
			}
			rotator, err := envconfig.LoadRotator(getenv(re))
			switch {
			case tt.refused != "":
				if err == nil || !strings.Contains(err.Error(), tt.refused) {
					t.Errorf("the rotator starts (%v), want it refused: %s", err, tt.refused)
				}
			case err != nil:
				t.Fatalf("the rotator refuses the template's environment: %v", err)
			case rotator.Adopt.From != tt.from || rotator.Adopt.Name != tt.wantName || rotator.Adopt.Kid != tt.wantKid:
				t.Errorf("the rotator adopts %+v, want from %q name %q kid %q", rotator.Adopt, tt.from, tt.wantName, tt.wantKid)
			}

			base := deploy(t, tpl, map[string]string{"KeyCustody": tt.custody})
			for fn, want := range map[string][]string{"SignerFunction": tt.signer, "RotatorFunction": tt.rotator} {
				added := extra(d.grants(fn), base.grants(fn))
				if got := describe(added); !slices.Equal(got, want) {
					t.Errorf("%s: AdoptKey %q adds %v, want %v", fn, tt.key, got, want)
				}
				for _, g := range added {
					if slices.Contains(g.actions, "kms:Sign") && fn == "SignerFunction" && g.condition != algs {
						t.Errorf("%s: %s has condition %s, want %s", fn, g.sid, g.condition, algs)
					}
				}
				if missing := extra(base.grants(fn), d.grants(fn)); len(missing) > 0 {
					t.Errorf("%s: AdoptKey %q removes %v", fn, tt.key, describe(missing))
				}
			}
		})
	}
}

// TestAdoptionConditions: the conditions follow AdoptKey's prefix, and
// the KMS grants also need KMS custody.
func TestAdoptionConditions(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for _, tt := range []struct {
		custody, key         string
		has, ssm, kms, using bool
	}{
		{"SecretsManager", "", false, false, false, false},
		{"KMS", "", false, false, false, false},
		{"SecretsManager", "ssm:" + hotsockKeyParameter, true, true, false, false},
		{"KMS", "ssm:" + hotsockKeyParameter, true, true, false, false},
		{"KMS", "kms:" + adoptedKMSKey, true, false, true, true},
		{"ParameterStore", "kms:" + adoptedKMSKey, true, false, true, false},
	} {
		d := deploy(t, tpl, map[string]string{"KeyCustody": tt.custody, "AdoptKey": tt.key})
		got := []bool{d.cond("HasAdoptKey"), d.cond("IsAdoptSsm"), d.cond("IsAdoptKms"), d.cond("AdoptsKmsKey")}
		if want := []bool{tt.has, tt.ssm, tt.kms, tt.using}; !slices.Equal(got, want) {
			t.Errorf("%s %q: HasAdoptKey, IsAdoptSsm, IsAdoptKms, AdoptsKmsKey = %v, want %v", tt.custody, tt.key, got, want)
		}
	}
}

// TestAdoptKidNeedsAdoptKey: a kid without a key to adopt is refused
// before deployment, as the rotator would refuse it at start.
func TestAdoptKidNeedsAdoptKey(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for _, tt := range []struct {
		key, kid string
		refused  bool
	}{
		{"", "", false},
		{"ssm:" + hotsockKeyParameter, "", false},
		{"ssm:" + hotsockKeyParameter, "key-1", false},
		{"", "key-1", true},
	} {
		d := deploy(t, tpl, map[string]string{"AdoptKey": tt.key, "AdoptKid": tt.kid})
		failed := d.failedRules()
		if refused := slices.ContainsFunc(failed, func(f string) bool { return strings.HasPrefix(f, "AdoptKidNeedsAdoptKey:") }); refused != tt.refused {
			t.Errorf("AdoptKey %q, AdoptKid %q: refused %v (%v), want %v", tt.key, tt.kid, refused, failed, tt.refused)
		}
		_, err := envconfig.LoadRotator(getenv(d.env("RotatorFunction")))
		if (err != nil) != tt.refused {
			t.Errorf("AdoptKey %q, AdoptKid %q: the rotator says %v", tt.key, tt.kid, err)
		}
	}
}

// TestAdoptParameterPatterns: AdoptKey admits only ssm:/<name> and
// kms:<key ARN>, each of which the rotator accepts and whose grants name a
// well-formed ARN; AdoptKid admits only kids the rotator accepts and that
// fit the secret's tag keys (jwks-issuer:published:<kid>, at most 128
// characters).
func TestAdoptParameterPatterns(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	pattern := func(name string) *regexp.Regexp {
		p, _ := get(tpl, "Parameters", name, "AllowedPattern").(string)
		if p == "" {
			t.Fatalf("parameter %s has no AllowedPattern", name)
		}
		return regexp.MustCompile(p)
	}
	key, kid := pattern("AdoptKey"), pattern("AdoptKid")
	kmsArn := regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:key/[A-Za-z0-9-]+$`)
	ssmArn := regexp.MustCompile(`^arn:aws:ssm:eu-west-1:123456789012:parameter/[A-Za-z0-9_.-]`)
	for v, want := range map[string]bool{
		"":                           true,
		"ssm:" + hotsockKeyParameter: true,
		"ssm:/a":                     true,
		"kms:" + adoptedKMSKey:       true,
		"kms:arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/abcd": true,
		"ssm:jwt-issuer/stack/x/private-key":                         false, // not fully qualified
		"ssm:/a b":                                                   false,
		"ssm:/a:b":                                                   false,
		"ssm:":                                                       false,
		"/jwt-issuer/stack/x/y/private-key":                          false,
		"kms:alias/jwt":                                              false,
		"kms:arn:aws:kms:eu-west-1:123456789012:alias/jwt": false,
		"kms:1234abcd-12ab-34cd-56ef-1234567890ab":         false,
		"kms:arn:aws:kms:arn:123456789012:key/abcd":        false, // "kms:arn:" twice
		"kms:arn:aws:kms:eu-west-1:12345678901:key/abcd":   false,
		"arn:aws:kms:eu-west-1:123456789012:key/abcd":      false,
		"secretsmanager:/x":                                false,
	} {
		if got := key.MatchString(v); got != want {
			t.Errorf("AdoptKey %q: pattern admits it %v, want %v", v, got, want)
		}
		if !want || v == "" {
			continue
		}
		custody := "ParameterStore"
		if strings.HasPrefix(v, "kms:") {
			custody = "KMS"
		}
		d := deploy(t, tpl, map[string]string{"KeyCustody": custody, "AdoptKey": v, "AdoptKid": "key-1"})
		if _, err := envconfig.LoadRotator(getenv(d.env("RotatorFunction"))); err != nil {
			t.Errorf("AdoptKey %q is admitted, the rotator refuses it: %v", v, err)
		}
		for _, g := range extra(d.grants("RotatorFunction"), deploy(t, tpl, map[string]string{"KeyCustody": custody}).grants("RotatorFunction")) {
			for _, r := range g.resources {
				if name, ok := strings.CutPrefix(v, "ssm:"); ok && (!ssmArn.MatchString(r) || !strings.HasSuffix(r, ":parameter"+name)) ||
					strings.HasPrefix(v, "kms:") && (!kmsArn.MatchString(r) || "kms:"+r != v) {
					t.Errorf("AdoptKey %q: the rotator's grant %s names %q", v, g.sid, r)
				}
			}
		}
	}
	for v, want := range map[string]bool{
		"":                       true,
		hotsockKid:               true,
		"V1StGXR8_Z5jdHi6B-myT":  true,
		"mrk-1234abcd":           true,
		"2024.key:1/a=b+c@d":     true,
		strings.Repeat("k", 100): true,
		strings.Repeat("k", 101): false,
		"a b":                    false,
		`a"b`:                    false,
		"a\tb":                   false,
	} {
		if got := kid.MatchString(v); got != want {
			t.Errorf("AdoptKid %q: pattern admits it %v, want %v", v, got, want)
		}
		if !want || v == "" {
			continue
		}
		d := deploy(t, tpl, map[string]string{"AdoptKey": "ssm:" + hotsockKeyParameter, "AdoptKid": v})
		if cfg, err := envconfig.LoadRotator(getenv(d.env("RotatorFunction"))); err != nil || cfg.Adopt.Kid != v {
			t.Errorf("AdoptKid %q is admitted; the rotator reads kid %q (%v)", v, cfg.Adopt.Kid, err)
		}
		if n := len("jwks-issuer:published:" + v); n > 128 {
			t.Errorf("AdoptKid %q makes a tag key of %d characters", v, n)
		}
	}
}

// checkAdoptedKeyStatement: a statement for the adopted KMS key is gated on
// KMS custody and a kms: AdoptKey, allows no more than reading the key and
// signing with it, and names the one key AdoptKey gives (TestAdoption
// checks the deployed ARN).
func checkAdoptedKeyStatement(t *testing.T, where string, s statement, actions []string) {
	t.Helper()
	tpl := loadTemplate(t)
	want := `{"Fn::And":[{"Condition":"IsKms"},{"Condition":"IsAdoptKms"}]}`
	if got := render(get(tpl, "Conditions", "AdoptsKmsKey")); got != want {
		t.Errorf("condition AdoptsKmsKey = %s, want %s", got, want)
	}
	for _, a := range actions {
		if a != "kms:DescribeKey" && a != "kms:GetPublicKey" && a != "kms:Sign" {
			t.Errorf("%s: %s on the adopted key; only DescribeKey, GetPublicKey and Sign", where, a)
		}
	}
	wantRes := `{"Fn::Sub":["arn:${Rest}",{"Rest":{"Fn::Select":[1,{"Fn::Split":["kms:arn:",{"Fn::Sub":"${AdoptKey}kms:arn:"}]}]}}]}`
	if got := render(s.raw["Resource"]); got != wantRes {
		t.Errorf("%s: Resource = %s, want the ARN of AdoptKey alone", where, got)
	}
}
