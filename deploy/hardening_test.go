package deploy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The checks of docs/security.md: KMS permissions that reach no key of
// another kind, a bucket and a secret that only the stack's roles (and the
// break-glass role) may write or read, rotation invokes only for the
// stack's secret, reserved concurrency, and the edge's headers and logs.

func isGetAttArn(v any, resource string) bool {
	ga, _ := get(v, "Fn::GetAtt").([]any)
	return len(ga) == 2 && ga[0] == resource && ga[1] == "Arn"
}

// resolve evaluates the template's Fn::If under the given truth of its
// conditions and drops AWS::NoValue, as CloudFormation does. A condition
// missing from conds fails the test.
func resolve(t *testing.T, v any, conds map[string]bool) any {
	t.Helper()
	switch x := v.(type) {
	case obj:
		if branches, ok := x["Fn::If"].([]any); ok && len(x) == 1 {
			name, _ := branches[0].(string)
			truth, ok := conds[name]
			if !ok {
				t.Fatalf("resolve: condition %s is not given", name)
			}
			if truth {
				return resolve(t, branches[1], conds)
			}
			return resolve(t, branches[2], conds)
		}
		if isRef(x, "AWS::NoValue") {
			return nil
		}
		out := obj{}
		for k, e := range x {
			if r := resolve(t, e, conds); r != nil {
				out[k] = r
			}
		}
		return out
	case []any:
		var out []any
		for _, e := range x {
			if r := resolve(t, e, conds); r != nil {
				out = append(out, r)
			}
		}
		return out
	}
	return v
}

// render is a resolved fragment as compact JSON, for comparisons and messages.
func render(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// renderSet renders a string-or-list as its sorted JSON elements.
func renderSet(v any) []string {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var out []string
	for _, e := range list {
		out = append(out, render(e))
	}
	slices.Sort(out)
	return out
}

var (
	signerArn  = `{"Fn::GetAtt":["SignerRole","Arn"]}`
	rotatorArn = `{"Fn::GetAtt":["RotatorRole","Arn"]}`
	breakGlass = `{"Ref":"BreakGlassRoleArn"}`
)

func sortedStrings(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// --- KMS --------------------------------------------------------------------

var ourKeySpecs = []string{"ECC_NIST_P256", "ECC_NIST_P384", "RSA_2048"}

var ourKeyTags = []string{"jwks-issuer:kid", "jwks-issuer:secret", "jwks-issuer:stack", "jwks-issuer:version"}

// TestKMSStatementsReachOnlyOurKeys: every KMS statement of both roles
// (but ListKeys, which involves no key) carries the conditions of what the
// rotator's keys are, so that a key of another kind (a database's, a
// bucket's) is out of reach even if someone gives it the stack tag; tag
// keys and the deletion window are limited; the secret's own KMS key is
// used only through Secrets Manager, for this secret; an adopted key
// (AdoptKey=kms:...) is reached only by the statements that name it alone
// (custody_test.go checks what they name once deployed).
func TestKMSStatementsReachOnlyOurKeys(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	seen := map[string]bool{}
	for _, fn := range []string{"SignerFunction", "RotatorFunction"} {
		for _, s := range roleOf(t, tpl, fn) {
			var kmsActions []string
			for _, a := range s.actions {
				if strings.HasPrefix(a, "kms:") {
					kmsActions = append(kmsActions, a)
					seen[fn+" "+a] = true
				}
			}
			if len(kmsActions) == 0 {
				continue
			}
			if len(kmsActions) != len(s.actions) {
				t.Errorf("%s statement %q mixes KMS and other actions: %v", fn, s.sid, s.actions)
			}
			checkKMSStatement(t, fn, s, kmsActions)
		}
	}
	for _, want := range []string{
		"SignerFunction kms:Sign", "SignerFunction kms:Decrypt",
		"RotatorFunction kms:CreateKey", "RotatorFunction kms:TagResource", "RotatorFunction kms:ScheduleKeyDeletion",
		"RotatorFunction kms:DisableKey", "RotatorFunction kms:GetKeyPolicy", "RotatorFunction kms:ListResourceTags",
		"RotatorFunction kms:ListKeys", "RotatorFunction kms:Decrypt", "RotatorFunction kms:GenerateDataKey",
	} {
		if !seen[want] {
			t.Errorf("no statement grants %s", want)
		}
	}
}

func checkKMSStatement(t *testing.T, fn string, s statement, actions []string) {
	t.Helper()
	where := fmt.Sprintf("%s statement %q (%v)", fn, s.sid, actions)
	if s.onlyIf == "AdoptsKmsKey" {
		checkAdoptedKeyStatement(t, where, s, actions)
		return
	}
	// The signer decrypts the secret only when it reads it (not in
	// Parameter Store custody).
	if fn == "SignerFunction" && s.onlyIf == "HasSecretKmsKey" {
		t.Errorf("%s is gated on HasSecretKmsKey, want SignerDecryptsSecret", where)
	}
	if s.onlyIf == "HasSecretKmsKey" || s.onlyIf == "SignerDecryptsSecret" {
		for _, a := range actions {
			if a != "kms:Decrypt" && a != "kms:GenerateDataKey" {
				t.Errorf("%s: only kms:Decrypt and kms:GenerateDataKey may use the secret's key", where)
			}
		}
		if !isRef(s.raw["Resource"], "SecretKmsKeyArn") {
			t.Errorf("%s: Resource = %s, want only !Ref SecretKmsKeyArn", where, render(s.raw["Resource"]))
		}
		via, _ := get(conditionValue(s, "StringEquals", "kms:ViaService"), "Fn::Sub").(string)
		if via != "secretsmanager.${AWS::Region}.amazonaws.com" {
			t.Errorf("%s: kms:ViaService = %s, want secretsmanager.${AWS::Region}.amazonaws.com", where, render(conditionValue(s, "StringEquals", "kms:ViaService")))
		}
		if !isRef(conditionValue(s, "StringEquals", "kms:EncryptionContext:SecretARN"), "KeySecret") {
			t.Errorf("%s: kms:EncryptionContext:SecretARN must be !Ref KeySecret", where)
		}
		return
	}
	if s.onlyIf != "IsKms" {
		t.Errorf("%s is not gated on IsKms", where)
	}
	if slices.Equal(actions, []string{"kms:ListKeys"}) {
		// No key is involved in ListKeys: a key condition would never match.
		if s.raw["Resource"] != "*" || s.condition != nil {
			t.Errorf("%s: want Resource * and no condition", where)
		}
		return
	}
	if slices.Contains(actions, "kms:ListKeys") {
		t.Errorf("%s: ListKeys belongs in a statement of its own", where)
	}
	// The key conditions. TagResource matches them IfExists (see the
	// template): CreateKey's own check on a key that does not exist yet.
	str, boolean := "StringEquals", "Bool"
	if slices.Equal(actions, []string{"kms:TagResource"}) {
		str, boolean = "StringEqualsIfExists", "BoolIfExists"
	}
	if v := conditionValue(s, str, "kms:KeyUsage"); v != "SIGN_VERIFY" {
		t.Errorf("%s: %s kms:KeyUsage = %v, want SIGN_VERIFY", where, str, v)
	}
	if v := strs(conditionValue(s, str, "kms:KeySpec")); !slices.Equal(sorted(v), ourKeySpecs) {
		t.Errorf("%s: %s kms:KeySpec = %v, want %v", where, str, v, ourKeySpecs)
	}
	if v := conditionValue(s, str, "kms:KeyOrigin"); v != "AWS_KMS" {
		t.Errorf("%s: %s kms:KeyOrigin = %v, want AWS_KMS", where, str, v)
	}
	if v := conditionValue(s, boolean, "kms:MultiRegion"); v != "false" && v != false {
		t.Errorf("%s: %s kms:MultiRegion = %v, want false", where, boolean, v)
	}
	// No operator may loosen them elsewhere in the statement.
	for op, keys := range s.condition {
		for key := range keys.(obj) {
			if strings.HasPrefix(key, "kms:Key") && op != str || key == "kms:MultiRegion" && op != boolean {
				t.Errorf("%s: %s also appears under %s", where, key, op)
			}
		}
	}
	for _, a := range actions {
		switch a {
		case "kms:CreateKey", "kms:TagResource":
			if got := strs(conditionValue(s, "ForAllValues:StringEquals", "aws:TagKeys")); !slices.Equal(sorted(got), ourKeyTags) {
				t.Errorf("%s: ForAllValues:StringEquals aws:TagKeys = %v, want exactly %v", where, got, ourKeyTags)
			}
			if !isRef(conditionValue(s, "StringEquals", "aws:RequestTag/jwks-issuer:stack"), "AWS::StackName") ||
				!isRef(conditionValue(s, "StringEquals", "aws:RequestTag/jwks-issuer:secret"), "KeySecret") {
				t.Errorf("%s: the request must tag the key with this stack and this secret", where)
			}
		case "kms:ListResourceTags":
			// Read-only; reads the tags of keys not yet known to be ours.
		default:
			if !isRef(conditionValue(s, "StringEquals", "aws:ResourceTag/jwks-issuer:stack"), "AWS::StackName") {
				t.Errorf("%s: %s is not limited to keys tagged with the stack name", where, a)
			}
		}
		if a == "kms:ScheduleKeyDeletion" {
			if !isRef(conditionValue(s, "NumericGreaterThanEquals", "kms:ScheduleKeyDeletionPendingWindowInDays"), "KmsDeletionWindowDays") {
				t.Errorf("%s: the waiting period must be at least KmsDeletionWindowDays", where)
			}
		}
	}
}

// --- bucket -----------------------------------------------------------------

// TestOnlyTheRotatorWritesTheKeySet: the bucket policy denies every write
// and delete of any object (jwks.json and the discovery document alike) to
// every principal but the rotator's role, and the break-glass role when
// one is given, whatever IAM policies in the account grant.
func TestOnlyTheRotatorWritesTheKeySet(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	pol := resource(t, tpl, "JwksBucketPolicy", "AWS::S3::BucketPolicy")
	for _, bg := range []bool{false, true} {
		doc := resolve(t, get(pol, "Properties", "PolicyDocument"), map[string]bool{"HasBreakGlassRole": bg})
		want := sortedStrings(rotatorArn)
		if bg {
			want = sortedStrings(rotatorArn, breakGlass)
		}
		found := false
		for _, s := range statements(t, doc, "") {
			if _, ok := s.raw["NotPrincipal"]; ok {
				t.Errorf("bucket policy statement %q uses NotPrincipal", s.sid)
			}
			if s.effect != "Deny" || !slices.Contains(s.actions, "s3:PutObject") {
				continue
			}
			found = true
			for _, a := range []string{"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"} {
				if !slices.Contains(s.actions, a) {
					t.Errorf("bucket policy statement %q does not deny %s", s.sid, a)
				}
			}
			if s.raw["Principal"] != "*" {
				t.Errorf("bucket policy statement %q: Principal %s, want *", s.sid, render(s.raw["Principal"]))
			}
			if sub, _ := get(s.raw["Resource"], "Fn::Sub").(string); sub != "${JwksBucket.Arn}/*" {
				t.Errorf("bucket policy statement %q: Resource %s, want every object (${JwksBucket.Arn}/*)", s.sid, render(s.raw["Resource"]))
			}
			if len(s.condition) != 1 {
				t.Errorf("bucket policy statement %q: conditions %s, want only ArnNotEquals aws:PrincipalArn", s.sid, render(s.condition))
			}
			if got := renderSet(conditionValue(s, "ArnNotEquals", "aws:PrincipalArn")); !slices.Equal(got, want) {
				t.Errorf("break-glass %v: bucket policy statement %q exempts %v, want %v", bg, s.sid, got, want)
			}
		}
		if !found {
			t.Errorf("break-glass %v: the bucket policy does not deny s3:PutObject to other principals", bg)
		}
	}
}

// --- secret -----------------------------------------------------------------

// TestSecretResourcePolicy: the secret's own policy denies reading the keys
// to all but the two functions (the signer AWSCURRENT only) and the
// break-glass role; writing values, labels and the rotator's clocks to all
// but the rotator and the break-glass role; UpdateSecret (which can write a
// value too) to all but CloudFormation's requests and the break-glass role;
// rotation through any other function. It does not deny what CloudFormation
// needs to update and delete the stack.
func TestSecretResourcePolicy(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	rp := resource(t, tpl, "KeySecretPolicy", "AWS::SecretsManager::ResourcePolicy")
	if !isRef(get(rp, "Properties", "SecretId"), "KeySecret") {
		t.Errorf("KeySecretPolicy: SecretId must be !Ref KeySecret")
	}
	if !isTrue(get(rp, "Properties", "BlockPublicPolicy")) {
		t.Error("KeySecretPolicy: BlockPublicPolicy must be true")
	}
	for _, bg := range []bool{false, true} {
		doc := resolve(t, get(rp, "Properties", "ResourcePolicy"), map[string]bool{"HasBreakGlassRole": bg})
		with := func(roles ...string) []string {
			if bg {
				roles = append(roles, breakGlass)
			}
			return sortedStrings(roles...)
		}
		denied := map[string][]statement{}
		for _, s := range statements(t, doc, "") {
			if s.effect != "Deny" {
				t.Errorf("secret policy statement %q is an Allow; grants belong in the roles", s.sid)
			}
			if s.raw["Principal"] != "*" {
				t.Errorf("secret policy statement %q: Principal %s, want * (with aws:PrincipalArn conditions)", s.sid, render(s.raw["Principal"]))
			}
			if _, ok := s.raw["NotPrincipal"]; ok {
				t.Errorf("secret policy statement %q uses NotPrincipal", s.sid)
			}
			for _, a := range s.actions {
				denied[a] = append(denied[a], s)
			}
		}
		exempt := func(action string) [][]string {
			var out [][]string
			for _, s := range denied[action] {
				var e []string
				if v := conditionValue(s, "ArnNotEquals", "aws:PrincipalArn"); v != nil {
					e = renderSet(v)
				}
				out = append(out, e)
			}
			return out
		}
		// Reads: one statement exempting exactly the functions (and the
		// break-glass role), one keeping the signer to AWSCURRENT.
		reads := denied["secretsmanager:GetSecretValue"]
		if !slices.ContainsFunc(exempt("secretsmanager:GetSecretValue"), func(e []string) bool {
			return slices.Equal(e, with(signerArn, rotatorArn))
		}) {
			t.Errorf("break-glass %v: no statement denies GetSecretValue to all but %v: %v", bg, with(signerArn, rotatorArn), exempt("secretsmanager:GetSecretValue"))
		}
		current := false
		for _, s := range reads {
			if render(conditionValue(s, "ArnEquals", "aws:PrincipalArn")) == signerArn &&
				conditionValue(s, "StringNotEquals", "secretsmanager:VersionStage") == "AWSCURRENT" {
				current = true
			}
		}
		if !current {
			t.Error("no statement denies the signer GetSecretValue of a stage other than AWSCURRENT")
		}
		for _, a := range []string{"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"} {
			if got := exempt(a); len(got) != 1 || !slices.Equal(got[0], with(rotatorArn)) {
				t.Errorf("break-glass %v: %s is denied to all but %v, want all but %v", bg, a, got, with(rotatorArn))
			}
		}
		for _, a := range []string{"secretsmanager:TagResource", "secretsmanager:UntagResource"} {
			ss := denied[a]
			if len(ss) != 1 || !slices.Equal(exempt(a)[0], with(rotatorArn)) {
				t.Errorf("break-glass %v: %s: statements %v, want one denying it to all but %v", bg, a, exempt(a), with(rotatorArn))
				continue
			}
			keys := strs(conditionValue(ss[0], "ForAnyValue:StringLike", "aws:TagKeys"))
			if !slices.Equal(sorted(keys), []string{"jwks-issuer:current:*", "jwks-issuer:published:*", "jwks-issuer:revoked:*"}) ||
				slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix("jwks-issuer:rollover", strings.TrimSuffix(k, "*")) }) {
				t.Errorf("%s is denied for tag keys %v: want the rotator's clocks only, never jwks-issuer:rollover (operators set it)", a, keys)
			}
		}
		for _, a := range []string{"secretsmanager:UpdateSecret", "secretsmanager:ReplicateSecretToRegions"} {
			ss := denied[a]
			if len(ss) != 1 {
				t.Errorf("%s: %d deny statements, want 1", a, len(ss))
				continue
			}
			if v := conditionValue(ss[0], "ForAllValues:StringNotEquals", "aws:CalledVia"); v != "cloudformation.amazonaws.com" {
				t.Errorf("%s: aws:CalledVia exemption = %v, want cloudformation.amazonaws.com (CloudFormation updates the secret with the deployer's credentials)", a, v)
			}
			got := exempt(a)[0]
			if bg && !slices.Equal(got, []string{breakGlass}) || !bg && len(got) != 0 {
				t.Errorf("break-glass %v: %s exempts %v", bg, a, got)
			}
		}
		rot := denied["secretsmanager:RotateSecret"]
		if len(rot) != 1 || !isGetAttArn(conditionValue(rot[0], "ArnNotEquals", "secretsmanager:RotationLambdaARN"), "RotatorFunction") ||
			conditionValue(rot[0], "Null", "secretsmanager:RotationLambdaARN") != "false" {
			t.Errorf("RotateSecret must be denied only when it names another rotation function: %v", rot)
		}
		// What CloudFormation and the runbook need stays open.
		for _, a := range []string{"secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy",
			"secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret", "secretsmanager:RestoreSecret", "secretsmanager:*"} {
			if len(denied[a]) > 0 {
				t.Errorf("the secret policy denies %s, which CloudFormation or operators need", a)
			}
		}
	}
	// The secret's KMS key: the parameter, or aws/secretsmanager.
	sec := resource(t, tpl, "KeySecret", "AWS::SecretsManager::Secret")
	for bg, want := range map[bool]any{true: obj{"Ref": "SecretKmsKeyArn"}, false: nil} {
		if got := get(resolve(t, getObj(sec, "Properties"), map[string]bool{"HasSecretKmsKey": bg}), "KmsKeyId"); render(got) != render(want) {
			t.Errorf("HasSecretKmsKey %v: KmsKeyId = %s, want %s", bg, render(got), render(want))
		}
	}
}

// TestRotationInvokeIsForTheSecret: Secrets Manager may invoke the rotator
// only for this stack's secret (SourceArn), from this account.
func TestRotationInvokeIsForTheSecret(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	perm := resource(t, tpl, "RotatorInvokePermission", "AWS::Lambda::Permission")
	if !isRef(get(perm, "Properties", "SourceArn"), "KeySecret") {
		t.Errorf("RotatorInvokePermission: SourceArn = %s, want !Ref KeySecret", render(get(perm, "Properties", "SourceArn")))
	}
	if !isGetAttArn(get(perm, "Properties", "FunctionName"), "RotatorFunction") {
		t.Errorf("RotatorInvokePermission: FunctionName must be the rotator")
	}
}

// --- functions and edge ---------------------------------------------------------

// TestReservedConcurrency: each function's reserved concurrency is its
// parameter, left out (unreserved) when the parameter is empty or 0.
func TestReservedConcurrency(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for fn, param := range map[string]string{"SignerFunction": "SignerReservedConcurrency", "RotatorFunction": "RotatorReservedConcurrency",
		"AuthorizerFunction": "AuthorizerReservedConcurrency"} {
		f := resource(t, tpl, fn, "AWS::Serverless::Function")
		branches, _ := get(f, "Properties", "ReservedConcurrentExecutions", "Fn::If").([]any)
		if len(branches) != 3 || !isRef(branches[1], param) || !isRef(branches[2], "AWS::NoValue") {
			t.Errorf("%s: ReservedConcurrentExecutions = %s, want !If [<condition>, !Ref %s, !Ref AWS::NoValue]",
				fn, render(get(f, "Properties", "ReservedConcurrentExecutions")), param)
			continue
		}
		cond, _ := branches[0].(string)
		got := render(get(tpl, "Conditions", cond))
		want := fmt.Sprintf(`{"Fn::Not":[{"Fn::Or":[{"Fn::Equals":[{"Ref":%q},""]},{"Fn::Equals":[{"Ref":%q},"0"]}]}]}`, param, param)
		if got != want {
			t.Errorf("%s: condition %s = %s, want true unless %s is empty or 0", fn, cond, got, param)
		}
		if p := getObj(tpl, "Parameters", param); p["Default"] != "" || p["AllowedPattern"] == nil {
			t.Errorf("parameter %s: Default %#v, AllowedPattern %v; want empty and a pattern", param, p["Default"], p["AllowedPattern"])
		}
	}
}

// TestEdge: responses carry the managed CORS-and-SecurityHeadersPolicy
// (HSTS, nosniff), and access logs go to the buckets given, if any.
func TestEdge(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	d := resource(t, tpl, "Distribution", "AWS::CloudFront::Distribution")
	cfg := getObj(d, "Properties", "DistributionConfig")
	if id := get(cfg, "DefaultCacheBehavior", "ResponseHeadersPolicyId"); id != "e61eb60c-9c35-4d20-a928-2b84e02af89c" {
		t.Errorf("ResponseHeadersPolicyId = %v, want Managed-CORS-and-SecurityHeadersPolicy (e61eb60c-9c35-4d20-a928-2b84e02af89c)", id)
	}
	if p := get(cfg, "DefaultCacheBehavior", "ViewerProtocolPolicy"); p != "redirect-to-https" && p != "https-only" {
		t.Errorf("ViewerProtocolPolicy = %v, want HTTPS only", p)
	}
	for has, want := range map[bool]string{
		true:  `{"Bucket":{"Fn::Sub":"${AccessLogBucket}.s3.amazonaws.com"},"IncludeCookies":false,"Prefix":{"Fn::Sub":"${AWS::StackName}/cloudfront/"}}`,
		false: "null",
	} {
		if got := render(get(resolve(t, cfg, map[string]bool{"HasAccessLogBucket": has, "JwksCachingEnabled": true, "HasCustomDomain": false}), "Logging")); got != want {
			t.Errorf("HasAccessLogBucket %v: Logging = %s, want %s", has, got, want)
		}
	}
	b := resource(t, tpl, "JwksBucket", "AWS::S3::Bucket")
	for has, want := range map[bool]string{
		true:  `{"DestinationBucketName":{"Ref":"S3AccessLogBucket"},"LogFilePrefix":{"Fn::Sub":"${AWS::StackName}/s3/"}}`,
		false: "null",
	} {
		if got := render(get(resolve(t, getObj(b, "Properties"), map[string]bool{"HasS3AccessLogBucket": has}), "LoggingConfiguration")); got != want {
			t.Errorf("HasS3AccessLogBucket %v: LoggingConfiguration = %s, want %s", has, got, want)
		}
	}
	for cond, param := range map[string]string{"HasAccessLogBucket": "AccessLogBucket", "HasS3AccessLogBucket": "S3AccessLogBucket",
		"HasBreakGlassRole": "BreakGlassRoleArn", "HasSecretKmsKey": "SecretKmsKeyArn"} {
		want := fmt.Sprintf(`{"Fn::Not":[{"Fn::Equals":[{"Ref":%q},""]}]}`, param)
		if got := render(get(tpl, "Conditions", cond)); got != want {
			t.Errorf("condition %s = %s, want %s", cond, got, want)
		}
	}
}
