// Package envconfig reads the functions' configuration from the environment
// (the variables of README's configuration table), naming the variable in
// every error. It checks what a variable is (a whole number, a known name);
// the rules on what the values mean are checked once, by their owners:
// lifecycle.Config.Validate for the timing invariants, kmscustody.New for
// the KMS settings.
package envconfig

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/lifecycle"
	"jwks-issuer/pkg/oidc"
)

// Custody names where private keys live.
type Custody string

const (
	CustodySecretsManager Custody = "secretsmanager"
	CustodyKMS            Custody = "kms"
	// CustodyParameterStore keeps keys in the secret, and the signing key
	// also in a SecureString parameter that signers read instead of the
	// secret.
	CustodyParameterStore Custody = "parameterstore"
)

// Signer is the signer function's configuration.
type Signer struct {
	SecretID    string
	MaxTokenTTL time.Duration
	KeyCache    time.Duration
	Custody     Custody
	// Issuer, when set, is every token's iss.
	Issuer oidc.Issuer
	// Audiences, when set, are the only values aud may take (and aud is
	// then required).
	Audiences []string
	// Parameter is the signing-key parameter signers read (Parameter Store
	// custody only).
	Parameter string
	// MaxClaimsBytes bounds a request's claims object, in bytes as written
	// in the request (1 or more).
	MaxClaimsBytes int
	// MaxBatchKMS bounds a batch under KMS custody (1 to 1000, the most
	// any batch may hold).
	MaxBatchKMS int
}

// The defaults of the signer's limits (token.DefaultMaxClaimsBytes, and
// template.yaml's KmsMaxBatch), and the most a batch may hold at all
// (token.MaxBatch).
const (
	DefaultMaxClaimsBytes = 16384
	DefaultMaxBatchKMS    = 100
	maxBatch              = 1000
)

// Rotator is the rotator function's configuration.
type Rotator struct {
	SecretID string
	Bucket   string
	Key      string
	// Issuer, when set, makes the rotator publish the discovery document at
	// DiscoveryKey, naming JWKSURL.
	Issuer            oidc.Issuer
	DiscoveryKey      string
	JWKSURL           string
	Algorithm         keys.Algorithm
	Custody           Custody
	Lifecycle         lifecycle.Config
	KMSDeletionWindow int // days; kmscustody.New checks it (KMS custody only)
	// StackTag is the value of the jwks-issuer:stack tag on the KMS keys
	// (KMS custody): the template sets the stack name, which its IAM
	// conditions scope the functions' KMS permissions by.
	StackTag string
	// SignerRoleARN and RotatorRoleARN are the roles the key policy of a
	// KMS key lets sign (KMS custody); kmscustody.New checks them.
	SignerRoleARN, RotatorRoleARN string
	// Parameter is the signing-key parameter the rotator keeps equal to
	// AWSCURRENT's key (Parameter Store custody only).
	Parameter string
	// Adopt is the key the first rotation of an uninitialised secret takes
	// over (ADOPT_KEY, ADOPT_KID); zero when none.
	Adopt Adoption
}

// Adoption is an ADOPT_KEY setting.
type Adoption struct {
	// Setting is the variable as given, for messages.
	Setting string
	// From is "ssm" (a PEM private key in a SecureString) or "kms" (an
	// existing KMS key); "" when nothing is adopted.
	From string
	// Name is the parameter name or the KMS key ARN.
	Name string
	// Kid is the kid the adopted key keeps.
	Kid string
}

// LoadSigner reads the signer's variables.
func LoadSigner(getenv func(string) string) (Signer, error) {
	r := reader{getenv: getenv}
	secretID := r.required("SECRET_ID")
	// T, S and k are shared with the rotator, and judged by the same rules
	// (lifecycle.Config.Validate), so that a value one function refuses the
	// other does not accept. The fields the signer does not read keep their
	// defaults, which pass.
	lc := lifecycle.Defaults()
	lc.MaxTokenTTL = r.seconds("MAX_TOKEN_TTL_SECONDS", lc.MaxTokenTTL)
	lc.KeyCacheMaxAge = r.seconds("KEY_CACHE_SECONDS", lc.KeyCacheMaxAge)
	lc.ClockSkew = r.seconds("CLOCK_SKEW_SECONDS", lc.ClockSkew)
	cfg := Signer{
		SecretID:    secretID,
		MaxTokenTTL: lc.MaxTokenTTL,
		KeyCache:    lc.KeyCacheMaxAge,
		Custody:     r.custody(),
		Issuer:      r.issuer(),
		Audiences:   r.list("ALLOWED_AUDIENCES"),
		// Read in every custody, though only KMS custody uses the batch
		// limit: a value no custody could use is refused all the same.
		MaxClaimsBytes: int(r.count("MAX_CLAIMS_BYTES", DefaultMaxClaimsBytes, 0)),
		MaxBatchKMS:    int(r.count("MAX_BATCH_KMS", DefaultMaxBatchKMS, maxBatch)),
	}
	cfg.Parameter = r.parameter(cfg.Custody)
	if r.err == nil {
		r.err = lc.Validate()
	}
	return cfg, r.err
}

// LoadRotator reads the rotator's variables and refuses a configuration that
// breaks an invariant.
func LoadRotator(getenv func(string) string) (Rotator, error) {
	r := reader{getenv: getenv}
	d := lifecycle.Defaults()
	issuer := r.issuer()
	cfg := Rotator{
		SecretID: r.required("SECRET_ID"),
		Bucket:   r.required("JWKS_BUCKET"),
		// Below the issuer's path, so that <issuer>/.well-known/... resolves.
		Key:          r.text("JWKS_KEY", issuer.ObjectKey(".well-known/jwks.json")),
		Issuer:       issuer,
		DiscoveryKey: r.text("DISCOVERY_KEY", issuer.ObjectKey(oidc.DiscoveryName)),
		Custody:      r.custody(),
		Lifecycle: lifecycle.Config{
			MaxTokenTTL:     r.seconds("MAX_TOKEN_TTL_SECONDS", d.MaxTokenTTL),
			KeyCacheMaxAge:  r.seconds("KEY_CACHE_SECONDS", d.KeyCacheMaxAge),
			JWKSMaxAge:      r.seconds("JWKS_MAX_AGE_SECONDS", d.JWKSMaxAge),
			ActivationGrace: r.seconds("ACTIVATION_GRACE_SECONDS", d.ActivationGrace),
			RetirementGrace: r.seconds("RETIREMENT_GRACE_SECONDS", d.RetirementGrace),
			ClockSkew:       r.seconds("CLOCK_SKEW_SECONDS", d.ClockSkew),
		},
		KMSDeletionWindow: int(r.integer("KMS_DELETION_WINDOW_DAYS", 30)),
		StackTag:          r.text("KMS_KEY_TAG", "jwks-issuer"),
		SignerRoleARN:     r.text("SIGNER_ROLE_ARN", ""),
		RotatorRoleARN:    r.text("ROTATOR_ROLE_ARN", ""),
	}
	alg, err := keys.ParseAlgorithm(r.text("KEY_ALGORITHM", string(keys.ES256)))
	if err != nil {
		r.fail("KEY_ALGORITHM: %v", err)
	}
	cfg.Algorithm = alg
	cfg.Parameter = r.parameter(cfg.Custody)
	cfg.Adopt = r.adoption(cfg.Custody)
	if !issuer.IsZero() {
		cfg.JWKSURL = issuer.URLOf(cfg.Key)
	}
	if r.err == nil {
		r.err = cfg.Lifecycle.Validate()
	}
	return cfg, r.err
}

// reader keeps the first error, so a loader reads like a list of fields.
type reader struct {
	getenv func(string) string
	err    error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) text(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) required(name string) string {
	v := r.text(name, "")
	if v == "" {
		r.fail("%s is required", name)
	}
	return v
}

func (r *reader) integer(name string, def int64) int64 {
	v := r.text(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail("%s is %q, must be a whole number", name, v)
		return def
	}
	if n < 0 {
		r.fail("%s is %d, must be 0 or more", name, n)
	}
	return n
}

// count reads a whole number from 1 to most (no bound when most is 0).
func (r *reader) count(name string, def, most int64) int64 {
	v := r.text(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		r.fail("%s is %q, must be a whole number", name, v)
		return def
	case most > 0 && (n < 1 || n > most):
		r.fail("%s is %d, must be 1 to %d", name, n, most)
	case n < 1:
		r.fail("%s is %d, must be at least 1", name, n)
	}
	return n
}

func (r *reader) seconds(name string, def time.Duration) time.Duration {
	n := r.integer(name, int64(def/time.Second))
	if n > int64(100*365*24*3600) {
		r.fail("%s is %d, must be at most 100 years in seconds", name, n)
	}
	return time.Duration(n) * time.Second
}

// issuer reads ISSUER_URL; empty means none.
func (r *reader) issuer() oidc.Issuer {
	v := r.text("ISSUER_URL", "")
	if v == "" {
		return oidc.Issuer{}
	}
	iss, err := oidc.ParseIssuer("ISSUER_URL", v)
	if err != nil {
		r.fail("%v", err)
	}
	return iss
}

// list reads a comma-separated list; empty entries are refused.
func (r *reader) list(name string) []string {
	v := r.text(name, "")
	if v == "" {
		return nil
	}
	var out []string
	for i, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			r.fail("%s is %q: entry %d is empty", name, v, i+1)
			return nil
		}
		out = append(out, item)
	}
	return out
}

func (r *reader) custody() Custody {
	switch v := Custody(strings.ToLower(r.text("KEY_CUSTODY", string(CustodySecretsManager)))); v {
	case CustodySecretsManager, CustodyKMS, CustodyParameterStore:
		return v
	default:
		r.fail("KEY_CUSTODY is %q, must be secretsmanager, kms or parameterstore", string(v))
		return ""
	}
}

// adoption reads ADOPT_KEY and ADOPT_KID. The default kid of a parameter in
// the hotsock jwt-issuer's layout (/jwt-issuer/stack/<name>/<uuid>/private-key)
// is the <uuid>, which is that issuer's kid; of a KMS key, its key id, which
// is the kid hotsock's KMS mode uses.
func (r *reader) adoption(custody Custody) Adoption {
	raw := r.text("ADOPT_KEY", "")
	if raw == "" {
		if r.text("ADOPT_KID", "") != "" {
			r.fail("ADOPT_KID is set but ADOPT_KEY is not")
		}
		return Adoption{}
	}
	a := Adoption{Setting: "ADOPT_KEY=" + raw, Kid: r.text("ADOPT_KID", "")}
	from, name, _ := strings.Cut(raw, ":")
	switch {
	case from == "ssm" && strings.HasPrefix(name, "/"):
		a.From, a.Name = from, name
		if a.Kid == "" {
			if seg := strings.Split(name, "/"); len(seg) >= 3 && seg[len(seg)-1] == "private-key" {
				a.Kid = seg[len(seg)-2]
			}
		}
	case from == "kms" && strings.HasPrefix(name, "arn:") && strings.Contains(name, ":key/"):
		if custody != CustodyKMS {
			r.fail("ADOPT_KEY is %q: a KMS key is adopted only under KEY_CUSTODY=kms", raw)
		}
		a.From, a.Name = from, name
		if a.Kid == "" {
			a.Kid = name[strings.Index(name, ":key/")+len(":key/"):]
		}
	default:
		r.fail("ADOPT_KEY is %q: must be ssm:/<parameter name> or kms:<key ARN>", raw)
		return Adoption{}
	}
	if a.Kid == "" {
		r.fail("ADOPT_KID is required: %s does not follow the hotsock jwt-issuer's layout "+
			"(/jwt-issuer/stack/<name>/<uuid>/private-key) the kid is taken from", raw)
	}
	// The kid becomes part of tag keys (jwks-issuer:published:<kid>), which
	// AWS limits to 128 characters.
	if strings.ContainsAny(a.Kid, " \t\n\"") || len(a.Kid) > 100 {
		r.fail("ADOPT_KID is %q: must be at most 100 characters, without spaces or quotes", a.Kid)
	}
	return a
}

// parameter reads SIGNING_KEY_PARAMETER, required in Parameter Store
// custody and ignored otherwise.
func (r *reader) parameter(custody Custody) string {
	if custody != CustodyParameterStore {
		return ""
	}
	name := r.required("SIGNING_KEY_PARAMETER")
	if name != "" && !strings.HasPrefix(name, "/") {
		r.fail("SIGNING_KEY_PARAMETER is %q: must be a full parameter name starting with /", name)
	}
	return name
}
