package token

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"jwks-issuer/pkg/keys"
)

const testIssuer = "https://issuer.example.com/tenant"

// ruleCase is a request and what the issuer under test answers it: the
// claims signed, exactly, or the error.
type ruleCase struct {
	name, payload string
	claims        string // the claims of the (first) token; "" when refused
	err           string // the whole error message; "" when signed
}

func runRuleCases(t *testing.T, tests []ruleCase, opts ...Option) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, rec, _ := newIssuer(t, keys.ES256, opts...)
			signs := countSigns(iss)
			var toks []string
			var err error
			if strings.HasPrefix(tt.payload, `{"batch"`) {
				toks, err = invokeBatch(t, iss, tt.payload)
			} else {
				var tok string
				if tok, err = invoke(t, iss, tt.payload); err == nil {
					toks = []string{tok}
				}
			}
			if tt.err != "" {
				if err == nil || err.Error() != tt.err || !IsRequestError(err) {
					t.Fatalf("error %v\nwant RequestError %s", err, tt.err)
				}
				if n := signs.Load(); n != 0 {
					t.Fatalf("%d tokens signed for a refused request", n)
				}
				if typ, _ := errorType(t, iss, tt.payload); typ != "RequestError" {
					t.Fatalf("errorType %q, want RequestError", typ)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			verify(t, toks[0], rec, now0)
			if got := claimsOf(t, toks[0]); got != tt.claims {
				t.Fatalf("claims\n%s\nwant\n%s", got, tt.claims)
			}
		})
	}
}

// With an issuer, every token carries iss: added after the caller's claims
// and before exp, iat and jti when the claims have none, kept where the
// caller put it when it is the issuer's; another iss is refused.
func TestIssuerSetsIss(t *testing.T) {
	exp := itoa(now0.Unix() + 30)
	runRuleCases(t, []ruleCase{
		{name: "iss set: the hotsock request gets it",
			payload: `{"claims":{"aud":"hotsock","channels":{"chat":{"subscribe":true}}},"ttl":30}`,
			claims:  `{"aud":"hotsock","channels":{"chat":{"subscribe":true}},"iss":"` + testIssuer + `","exp":` + exp + `}`},
		{name: "iss set: before iat",
			payload: `{"claims":{"sub":"u1"},"ttl":30,"setIat":true}`,
			claims:  `{"sub":"u1","iss":"` + testIssuer + `","exp":` + exp + `,"iat":` + itoa(now0.Unix()) + `}`},
		{name: "iss set: empty claims",
			payload: `{"claims":{},"ttl":30}`,
			claims:  `{"iss":"` + testIssuer + `","exp":` + exp + `}`},
		{name: "iss matching: kept where the caller put it",
			payload: `{"claims":{"sub":"u1","iss":"` + testIssuer + `","aud":"a"},"ttl":30}`,
			claims:  `{"sub":"u1","iss":"` + testIssuer + `","aud":"a","exp":` + exp + `}`},
		{name: "iss matching: escaped the same string",
			payload: `{"claims":{"iss":"https:\/\/issuer.example.com\/\u0074enant"},"ttl":30}`,
			claims:  `{"iss":"https:\/\/issuer.example.com\/\u0074enant","exp":` + exp + `}`},
		{name: "iss in a nested object is the caller's",
			payload: `{"claims":{"x":{"iss":"other"}},"ttl":30}`,
			claims:  `{"x":{"iss":"other"},"iss":"` + testIssuer + `","exp":` + exp + `}`},
		{name: "iss differing",
			payload: `{"claims":{"sub":"u1","iss":"https://issuer.example.com"}}`,
			err:     `invalid request: claims.iss must be "` + testIssuer + `" (ISSUER_URL) or be left out, got a different string`},
		{name: "iss differing: a trailing slash",
			payload: `{"claims":{"iss":"` + testIssuer + `/"}}`,
			err:     `invalid request: claims.iss must be "` + testIssuer + `" (ISSUER_URL) or be left out, got a different string`},
		{name: "iss not a string",
			payload: `{"claims":{"iss":["` + testIssuer + `"]}}`,
			err:     `invalid request: claims.iss must be "` + testIssuer + `" (ISSUER_URL) or be left out, got an array`},
		{name: "iss null",
			payload: `{"claims":{"iss":null}}`,
			err:     `invalid request: claims.iss must be "` + testIssuer + `" (ISSUER_URL) or be left out, got null`},
		{name: "batch: every item gets iss",
			payload: batchOf(`{"claims":{"iss":"`+testIssuer+`"},"ttl":30}`, `{"claims":{"n":1},"ttl":30}`),
			claims:  `{"iss":"` + testIssuer + `","exp":` + exp + `}`},
		{name: "batch: the item differing is named",
			payload: batchOf(`{"claims":{}}`, `{"claims":{}}`, `{"claims":{"iss":"x"}}`),
			err:     `invalid request: batch[2].claims.iss must be "` + testIssuer + `" (ISSUER_URL) or be left out, got a different string`},
	}, WithIssuer(testIssuer))
}

// The second item of a batch gets iss too.
func TestBatchItemsGetIss(t *testing.T) {
	iss, rec, _ := newIssuer(t, keys.ES256, WithIssuer(testIssuer))
	for _, remote := range []int{0, 4} {
		wrapSigner(iss, remote)
		toks, err := invokeBatch(t, iss, batchOf(`{"claims":{"n":0}}`, `{"claims":{"n":1,"iss":"`+testIssuer+`"}}`, `{"claims":{"n":2}}`))
		if err != nil {
			t.Fatal(err)
		}
		for n, tok := range toks {
			if c := verify(t, tok, rec, now0); c["iss"] != testIssuer || c["n"] != float64(n) || strings.Count(claimsOf(t, tok), `"iss"`) != 1 {
				t.Errorf("MaxInFlight %d: token %d has claims %s", remote, n, claimsOf(t, tok))
			}
		}
	}
}

// Without an issuer, iss is the caller's, as before.
func TestNoIssuerLeavesIssToTheCaller(t *testing.T) {
	exp := itoa(now0.Unix() + 30)
	runRuleCases(t, []ruleCase{
		{name: "no iss", payload: `{"claims":{"sub":"u1"},"ttl":30}`, claims: `{"sub":"u1","exp":` + exp + `}`},
		{name: "any iss", payload: `{"claims":{"iss":"anyone","sub":"u1"},"ttl":30}`, claims: `{"iss":"anyone","sub":"u1","exp":` + exp + `}`},
		{name: "any aud", payload: `{"claims":{"aud":7},"ttl":30}`, claims: `{"aud":7,"exp":` + exp + `}`},
	}, WithIssuer(""))
}

// With allowed audiences, aud is required, and every audience it names is
// one of them.
func TestAllowedAudiences(t *testing.T) {
	exp := itoa(now0.Unix() + 30)
	const allowed = "(allowed: hotsock, chat; ALLOWED_AUDIENCES)"
	runRuleCases(t, []ruleCase{
		{name: "aud string allowed", payload: `{"claims":{"aud":"hotsock"},"ttl":30}`, claims: `{"aud":"hotsock","exp":` + exp + `}`},
		{name: "aud string escaped allowed", payload: `{"claims":{"aud":"\u0063hat"},"ttl":30}`, claims: `{"aud":"\u0063hat","exp":` + exp + `}`},
		{name: "aud array allowed", payload: `{"claims":{"aud":["chat", "hotsock"]},"ttl":30}`, claims: `{"aud":["chat","hotsock"],"exp":` + exp + `}`},
		{name: "aud array of one allowed", payload: `{"claims":{"aud":["chat"]},"ttl":30}`, claims: `{"aud":["chat"],"exp":` + exp + `}`},
		{name: "aud missing",
			payload: `{"claims":{"sub":"u1"}}`, err: "invalid request: claims.aud is required " + allowed},
		{name: "aud only in a nested object",
			payload: `{"claims":{"x":{"aud":"chat"}}}`, err: "invalid request: claims.aud is required " + allowed},
		{name: "aud string refused",
			payload: `{"claims":{"aud":"hotsock-admin"}}`, err: "invalid request: claims.aud is not an allowed audience " + allowed},
		{name: "aud string refused: case differs",
			payload: `{"claims":{"aud":"Hotsock"}}`, err: "invalid request: claims.aud is not an allowed audience " + allowed},
		{name: "aud array refused",
			payload: `{"claims":{"aud":["hotsock","chat","admin"]}}`, err: "invalid request: claims.aud[2] is not an allowed audience " + allowed},
		{name: "aud array empty",
			payload: `{"claims":{"aud":[]}}`, err: "invalid request: claims.aud is an empty array, it must name at least one audience " + allowed},
		{name: "aud array of a non-string",
			payload: `{"claims":{"aud":["chat",1]}}`, err: "invalid request: claims.aud[1] must be a string, got a number"},
		{name: "aud a number",
			payload: `{"claims":{"aud":1}}`, err: "invalid request: claims.aud must be a string or an array of strings, got a number"},
		{name: "aud null",
			payload: `{"claims":{"aud":null}}`, err: "invalid request: claims.aud must be a string or an array of strings, got null"},
		{name: "batch: the item refused is named",
			payload: batchOf(`{"claims":{"aud":"chat"}}`, `{"claims":{"sub":"u1"}}`), err: "invalid request: batch[1].claims.aud is required " + allowed},
		{name: "batch: an item's array element",
			payload: batchOf(`{"claims":{"aud":"chat"}}`, `{"claims":{"aud":"chat"}}`, `{"claims":{"aud":["chat","x"]}}`),
			err:     "invalid request: batch[2].claims.aud[1] is not an allowed audience " + allowed},
	}, WithAllowedAudiences([]string{"hotsock", "chat"}))
}

// A long list of allowed audiences is cut short in the error.
func TestAllowedAudiencesListIsTruncated(t *testing.T) {
	var list []string
	for n := range 50 {
		list = append(list, fmt.Sprintf("audience-%02d.example.com", n))
	}
	list = append(list, strings.Repeat("z", 300))
	iss, _, _ := newIssuer(t, keys.ES256, WithAllowedAudiences(list))
	_, err := invoke(t, iss, `{"claims":{"aud":"nobody"}}`)
	if err == nil || !strings.HasPrefix(err.Error(), "invalid request: claims.aud is not an allowed audience (allowed: audience-00.example.com, audience-01.example.com, ") ||
		!strings.HasSuffix(err.Error(), ", ... (51 in all); ALLOWED_AUDIENCES)") || len(err.Error()) > 350 {
		t.Fatalf("error (%d bytes) %v", len(err.Error()), err)
	}
	// The last audience is allowed, though the message leaves it out.
	if _, err := invoke(t, iss, `{"claims":{"aud":"`+list[50]+`"}}`); err != nil {
		t.Fatal(err)
	}
	// One audience longer than the message's budget is shortened.
	iss, _, _ = newIssuer(t, keys.ES256, WithAllowedAudiences(list[50:]))
	_, err = invoke(t, iss, `{"claims":{"aud":"nobody"}}`)
	if want := "(allowed: " + strings.Repeat("z", 64) + "...; ALLOWED_AUDIENCES)"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("error %v, want the suffix %s", err, want)
	}
}

// Issuer and audiences together: the hotsock request, with its aud, gets
// iss.
func TestIssuerAndAudiences(t *testing.T) {
	exp := itoa(now0.Unix() + 30)
	runRuleCases(t, []ruleCase{
		{name: "hotsock", payload: `{"claims":{"aud":"hotsock","sub":"u1"},"ttl":30}`,
			claims: `{"aud":"hotsock","sub":"u1","iss":"` + testIssuer + `","exp":` + exp + `}`},
		{name: "iss refused before aud is looked at", payload: `{"claims":{"iss":"x"}}`,
			err: `invalid request: claims.iss must be "` + testIssuer + `" (ISSUER_URL) or be left out, got a different string`},
	}, WithIssuer(testIssuer), WithAllowedAudiences([]string{"hotsock"}))
}

// claimsOfSize is a request whose claims object is n bytes as written,
// with space after the colon (spaces count) when spaced.
func claimsOfSize(n int, spaced bool) string {
	pre, post := `{"s":"`, `"}`
	if spaced {
		pre = `{"s": "`
	}
	return `{"claims":` + pre + strings.Repeat("x", n-len(pre)-len(post)) + post + `}`
}

// Claims are bounded by their bytes in the request: DefaultMaxClaimsBytes
// unless set otherwise.
func TestClaimsSizeLimit(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		payload string
		err     string
	}{
		{"at the default limit", nil, claimsOfSize(DefaultMaxClaimsBytes, false), ""},
		{"one byte over the default limit", nil, claimsOfSize(DefaultMaxClaimsBytes+1, false),
			"invalid request: claims is 16385 bytes, the limit is 16384 (MAX_CLAIMS_BYTES)"},
		{"whitespace counts", nil, claimsOfSize(DefaultMaxClaimsBytes+1, true),
			"invalid request: claims is 16385 bytes, the limit is 16384 (MAX_CLAIMS_BYTES)"},
		{"whitespace around the object does not", nil, strings.Replace(claimsOfSize(DefaultMaxClaimsBytes, false), `"claims":`, `"claims":    `, 1), ""},
		{"at a limit set", []Option{WithMaxClaimsBytes(100)}, claimsOfSize(100, false), ""},
		{"one byte over a limit set", []Option{WithMaxClaimsBytes(100)}, claimsOfSize(101, false),
			"invalid request: claims is 101 bytes, the limit is 100 (MAX_CLAIMS_BYTES)"},
		{"the limit applies to each batch item", []Option{WithMaxClaimsBytes(100)},
			batchOf(claimsOfSize(100, false), claimsOfSize(101, false)),
			"invalid request: batch[1].claims is 101 bytes, the limit is 100 (MAX_CLAIMS_BYTES)"},
		{"0: no limit", []Option{WithMaxClaimsBytes(0)}, claimsOfSize(100000, false), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, _, _ := newIssuer(t, keys.ES256, tt.opts...)
			_, err := iss.Invoke(t.Context(), []byte(tt.payload))
			switch {
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.err != "" && (err == nil || err.Error() != tt.err || !IsRequestError(err)):
				t.Fatalf("error %v\nwant RequestError %s", err, tt.err)
			}
		})
	}
}

// A batch under KMS custody holds at most the KMS limit; without it, the
// limit is MaxBatch.
func TestKMSBatchLimit(t *testing.T) {
	many := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = `{"claims":{}}`
		}
		return batchOf(items...)
	}
	tests := []struct {
		name    string
		opts    []Option
		payload string
		err     string
	}{
		{"at the cap", []Option{WithKMSBatchLimit(100)}, many(100), ""},
		{"one over the cap", []Option{WithKMSBatchLimit(100)}, many(101),
			"invalid request: batch holds 101 requests, the limit is 100 (MAX_BATCH_KMS): with keys in KMS, every token is a kms:Sign call"},
		{"far over the cap", []Option{WithKMSBatchLimit(2)}, many(MaxBatch + 5),
			"invalid request: batch holds 1005 requests, the limit is 2 (MAX_BATCH_KMS): with keys in KMS, every token is a kms:Sign call"},
		{"an empty batch names the cap", []Option{WithKMSBatchLimit(2)}, `{"batch":[]}`,
			"invalid request: batch is empty: it must hold 1 to 2 requests"},
		{"a cap of MaxBatch", []Option{WithKMSBatchLimit(MaxBatch)}, many(MaxBatch + 1),
			"invalid request: batch holds 1001 requests, the limit is 1000"},
		{"a cap above MaxBatch is MaxBatch", []Option{WithKMSBatchLimit(MaxBatch + 1)}, many(MaxBatch + 1),
			"invalid request: batch holds 1001 requests, the limit is 1000"},
		{"no cap: MaxBatch", nil, many(MaxBatch), ""},
		{"no cap: one over MaxBatch", nil, many(MaxBatch + 1), "invalid request: batch holds 1001 requests, the limit is 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, _, _ := newIssuer(t, keys.ES256, tt.opts...)
			c := wrapSigner(iss, 4) // KMS: remote
			toks, err := invokeBatch(t, iss, tt.payload)
			if tt.err == "" {
				if err != nil || len(toks) != strings.Count(tt.payload, "claims") {
					t.Fatalf("%d tokens, %v", len(toks), err)
				}
				return
			}
			if err == nil || err.Error() != tt.err || !IsRequestError(err) {
				t.Fatalf("error %v\nwant RequestError %s", err, tt.err)
			}
			if n := c.calls.Load(); n != 0 {
				t.Fatalf("%d Sign calls for a refused batch", n)
			}
		})
	}
}

// The names of the caller's that an error message repeats are shortened:
// field names, claim names, and the names on the path to a duplicate.
func TestEchoedNamesAreShortened(t *testing.T) {
	long := strings.Repeat("n", 1000)
	// 63 ASCII bytes then a 3-byte character: a cut at 64 would split it.
	wide := strings.Repeat("w", 63) + strings.Repeat("€", 100)
	nest := func(depth int, inner string) string {
		return `{"claims":` + strings.Repeat(`{"a":`, depth) + inner + strings.Repeat(`}`, depth) + `}`
	}
	tests := []struct{ name, payload, want string }{
		{"unknown field", `{"claims":{},"` + long + `":1}`,
			`invalid request: unknown field "` + long[:64] + `..." in the request (allowed: claims, ttl, setIat, setJti; or batch alone)`},
		{"unknown field in a batch item", batchOf(`{"claims":{},"` + long + `":1}`),
			`invalid request: unknown field "` + long[:64] + `..." in batch[0] (allowed: claims, ttl, setIat, setJti)`},
		{"unknown field, cut at a character", `{"claims":{},"` + wide + `":1}`,
			`invalid request: unknown field "` + strings.Repeat("w", 63) + `..." in the request (allowed: claims, ttl, setIat, setJti; or batch alone)`},
		{"duplicate claim", `{"claims":{"` + long + `":1,"` + long + `":2}}`,
			`invalid request: claims names the member "` + long[:64] + `..." more than once: claims that can be read two ways are refused`},
		{"duplicate inside a long name", `{"claims":{"` + long + `":{"x":1,"x":2}}}`,
			`invalid request: claims.` + long[:64] + `... names the member "x" more than once: claims that can be read two ways are refused`},
		{"duplicate deep inside", `{"claims":{"` + long + `":[{"` + wide + `":{"x":1,"x":2}}]}}`,
			`invalid request: claims.` + long[:64] + `...[0].` + strings.Repeat("w", 63) + `... names the member "x" more than once: claims that can be read two ways are refused`},
		{"a long path is elided", nest(40, `{"x":1,"x":2}`),
			`invalid request: claims` + strings.Repeat(".a", 8) + `(...24 more...)` + strings.Repeat(".a", 8) + ` names the member "x" more than once: claims that can be read two ways are refused`},
		{"a path at the bound is whole", nest(16, `{"x":1,"x":2}`),
			`invalid request: claims` + strings.Repeat(".a", 16) + ` names the member "x" more than once: claims that can be read two ways are refused`},
	}
	iss, _, _ := newIssuer(t, keys.ES256)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := iss.Invoke(t.Context(), []byte(tt.payload))
			if err == nil || err.Error() != tt.want || !IsRequestError(err) {
				t.Fatalf("error %v\nwant %s", err, tt.want)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error is not UTF-8: %q", err.Error())
			}
		})
	}
}
