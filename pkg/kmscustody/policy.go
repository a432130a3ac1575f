package kmscustody

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// adminActions are what the key policy leaves to the account (and so to
// IAM policies in it): managing the key, never using it. Sign and
// GetPublicKey go to the stack's roles alone, and CreateGrant to nobody,
// so that an IAM grant such as kms:* on * cannot sign tokens: a principal
// must first change the key policy, which CloudTrail records as such.
var adminActions = []string{
	"kms:CancelKeyDeletion",
	"kms:CreateAlias",
	"kms:DeleteAlias",
	"kms:DescribeKey",
	"kms:DisableKey",
	"kms:EnableKey",
	"kms:GetKeyPolicy",
	"kms:ListGrants",
	"kms:ListKeyPolicies",
	"kms:ListResourceTags",
	"kms:PutKeyPolicy",
	"kms:RevokeGrant",
	"kms:ScheduleKeyDeletion",
	"kms:TagResource",
	"kms:UntagResource",
	"kms:UpdateAlias",
	"kms:UpdateKeyDescription",
}

// useActions are what the signer and the rotator need of a key.
var useActions = []string{"kms:GetPublicKey", "kms:Sign"}

// Statement ids of the key policy.
const (
	sidAdmin      = "AccountAdministersKey"
	sidRoles      = "StackRolesSign"
	sidAccountIAM = "AccountSignsThroughIAM"
)

var (
	roleARN   = regexp.MustCompile(`^arn:(aws[a-z-]*):iam::([0-9]{12}):role/.+$`)
	secretARN = regexp.MustCompile(`^arn:(aws[a-z-]*):secretsmanager:[a-z0-9-]+:([0-9]{12}):secret:.+$`)
)

// account is the partition and account id of the stack, from the rotator's
// role or else from the secret's ARN.
func account(signerRole, rotatorRole, secret string) (partition, id string, err error) {
	switch {
	case signerRole == "" && rotatorRole == "":
	case signerRole == "" || rotatorRole == "":
		return "", "", fmt.Errorf("SIGNER_ROLE_ARN (%q) and ROTATOR_ROLE_ARN (%q) must be set together", signerRole, rotatorRole)
	default:
		s, r := roleARN.FindStringSubmatch(signerRole), roleARN.FindStringSubmatch(rotatorRole)
		if s == nil {
			return "", "", fmt.Errorf("SIGNER_ROLE_ARN is %q, not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", signerRole)
		}
		if r == nil {
			return "", "", fmt.Errorf("ROTATOR_ROLE_ARN is %q, not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", rotatorRole)
		}
		if s[1] != r[1] || s[2] != r[2] {
			return "", "", fmt.Errorf("SIGNER_ROLE_ARN (%s) and ROTATOR_ROLE_ARN (%s) are in different accounts", signerRole, rotatorRole)
		}
		return r[1], r[2], nil
	}
	if m := secretARN.FindStringSubmatch(secret); m != nil {
		return m[1], m[2], nil
	}
	return "", "", fmt.Errorf("KMS custody needs the account its keys belong to: set SIGNER_ROLE_ARN and " +
		"ROTATOR_ROLE_ARN (the template does), or give SECRET_ID as the secret's ARN")
}

// keyPolicy is the policy every key the custody makes carries: the account
// administers the key, and the stack's two roles use it. Without roles (a
// local run) the account also uses it, through IAM, as under KMS's default
// policy. Either way the account root keeps kms:PutKeyPolicy, so the key
// never becomes unmanageable although its creator (the rotator) cannot
// change the policy.
func keyPolicy(partition, accountID, signerRole, rotatorRole string) string {
	type statement struct {
		Sid       string
		Effect    string
		Principal map[string]any
		Action    []string
		Resource  string
	}
	root := fmt.Sprintf("arn:%s:iam::%s:root", partition, accountID)
	doc := struct {
		Version   string
		Statement []statement
	}{Version: "2012-10-17"}
	doc.Statement = append(doc.Statement, statement{
		Sid: sidAdmin, Effect: "Allow", Principal: map[string]any{"AWS": root}, Action: adminActions, Resource: "*",
	})
	if signerRole != "" {
		roles := []string{signerRole}
		if rotatorRole != signerRole {
			roles = append(roles, rotatorRole)
		}
		doc.Statement = append(doc.Statement, statement{
			Sid: sidRoles, Effect: "Allow", Principal: map[string]any{"AWS": roles}, Action: useActions, Resource: "*",
		})
	} else {
		doc.Statement = append(doc.Statement, statement{
			Sid: sidAccountIAM, Effect: "Allow", Principal: map[string]any{"AWS": root}, Action: useActions, Resource: "*",
		})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // a fixed structure of strings always marshals
	}
	return string(b)
}

// samePolicy reports whether two key policy documents say the same: equal
// once parsed, with a lone string and a one-element list taken as equal, and
// the order of lists (actions, principals, statements) ignored, as IAM
// ignores it.
func samePolicy(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	nx, ny := normalize(x), normalize(y)
	return nx == ny
}

// normalize renders a parsed JSON value canonically.
func normalize(v any) string {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			b.WriteString(normalize(t[k]))
		}
		b.WriteByte('}')
		return b.String()
	case []any:
		if len(t) == 1 {
			return normalize(t[0])
		}
		items := make([]string, len(t))
		for i, e := range t {
			items[i] = normalize(e)
		}
		slices.Sort(items)
		return "[" + strings.Join(items, ",") + "]"
	default:
		b, _ := json.Marshal(t)
		return string(b)
	}
}
