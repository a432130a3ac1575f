package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/token/internal/request"
)

// FuzzMatchesEncodingJSON checks the signer's own JSON reading against
// encoding/json, an implementation it shares no code with. Whatever
// json.Valid refuses is refused. Every payload is also judged by a second
// reading of the rules (judge.tokens), on encoding/json's decoding with
// UseNumber: the signer accepts exactly what it accepts, and every token's
// claims are the request's claims as encoding/json reads them, numbers with
// their exact text, with iss, exp, iat and jti as the issuer sets them, in
// the caller's order, each name once. It does so for an issuer without the
// deployment's rules and for one with all of them (differentialRules).
func FuzzMatchesEncodingJSON(f *testing.F) {
	for _, seed := range invokeSeeds() {
		f.Add([]byte(seed))
	}
	for _, seed := range corpusSeeds(f, "FuzzInvoke") {
		f.Add(seed)
	}
	for _, seed := range differentialSeeds() {
		f.Add(seed.payload)
	}
	var issuers []*Issuer
	var judges []judge
	for _, rules := range differentialRules() {
		issuers = append(issuers, differentialIssuer(rules))
		judges = append(judges, newJudge(rules))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for k, iss := range issuers {
			want, why := judges[k].tokens(payload)
			out, err := iss.Invoke(context.Background(), payload)
			if err != nil {
				if !IsRequestError(err) || !strings.HasPrefix(err.Error(), "invalid request: ") {
					t.Fatalf("rules %d: rejection is not a request error: %v", k, err)
				}
				if want != nil {
					t.Fatalf("rules %d: refused a valid request: %v", k, err)
				}
				continue
			}
			if !json.Valid(payload) {
				t.Fatalf("rules %d: accepted a payload json.Valid refuses", k)
			}
			if want == nil {
				t.Fatalf("rules %d: accepted a payload that should be refused: %s", k, why)
			}
			toks := responseTokens(t, out, len(want))
			for n, tok := range toks {
				checkToken(t, tok, want[n])
			}
		}
	})
}

// differentialIssuer is the issuer for the fuzz targets, with rules.
func differentialIssuer(rules request.Rules) *Issuer {
	key := NewKey("fuzz", keys.ES256, fixedSigner{})
	c := &clock{now0}
	return NewIssuer(NewKeyCache(func(context.Context) (*Key, error) { return key, nil }, time.Hour, c.Now, quietLog()), differentialT, c.Now,
		WithMaxClaimsBytes(rules.MaxClaimsBytes), WithKMSBatchLimit(rules.MaxBatchKMS),
		WithIssuer(rules.Issuer), WithAllowedAudiences(rules.Audiences))
}

// differentialRules are the rules of the issuers the fuzz target compares:
// none (the depth seeds' claims are larger than DefaultMaxClaimsBytes),
// and all of them, with small limits.
func differentialRules() []request.Rules {
	return []request.Rules{
		{},
		{MaxClaimsBytes: 256, MaxBatchKMS: 3, Issuer: "https://issuer.example.com/t", Audiences: []string{"hotsock", "chat"}},
	}
}

// judge is the second reading of the rules, at time now, for tokens living
// at most limit seconds, with the deployment's rules.
type judge struct {
	now, limit int64
	rules      request.Rules
}

func newJudge(rules request.Rules) judge {
	return judge{now: now0.Unix(), limit: int64(differentialT / time.Second), rules: rules}
}

// differentialT is T for the fuzz target.
const differentialT = time.Hour

// fixedSigner signs with a constant signature: the claims are under test,
// not the signature, and ECDSA would take most of each run.
type fixedSigner struct{}

func (fixedSigner) Sign(context.Context, []byte) ([]byte, error) { return make([]byte, 64), nil }

// wantToken is what one token's claims must be.
type wantToken struct {
	claims map[string]any // jti left out when the issuer sets it
	names  []string       // the top-level names in order
	setJti bool
}

// tokens judges payload by the rules, reading it with encoding/json: the
// tokens it must give, or nil and why it must be refused.
func (j judge) tokens(payload []byte) ([]wantToken, string) {
	switch {
	case !utf8.Valid(payload):
		return nil, "invalid UTF-8"
	case !json.Valid(payload):
		return nil, "invalid JSON"
	case hasDuplicateName(payload):
		return nil, "a name given twice"
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil || top == nil {
		return nil, "not an object"
	}
	if _, isBatch := top["batch"]; isBatch {
		return j.batch(top)
	}
	w, why := j.token(top)
	if why != "" {
		return nil, why
	}
	return []wantToken{w}, ""
}

// batch judges a payload with a batch.
func (j judge) batch(top map[string]json.RawMessage) ([]wantToken, string) {
	raw := top["batch"]
	var items []json.RawMessage
	limit := request.MaxBatch
	if j.rules.MaxBatchKMS > 0 {
		limit = j.rules.MaxBatchKMS
	}
	if len(top) != 1 || json.Unmarshal(raw, &items) != nil || len(items) == 0 || len(items) > limit {
		return nil, "batch not alone, or not an array of 1 to the batch limit"
	}
	var want []wantToken
	for n, item := range items {
		var obj map[string]json.RawMessage
		if json.Unmarshal(item, &obj) != nil || obj == nil {
			return nil, fmt.Sprintf("batch[%d] is not an object", n)
		}
		w, why := j.token(obj)
		if why != "" {
			return nil, fmt.Sprintf("batch[%d]: %s", n, why)
		}
		want = append(want, w)
	}
	return want, ""
}

// token judges one request object.
func (j judge) token(obj map[string]json.RawMessage) (wantToken, string) {
	now, limit := j.now, j.limit
	for name := range obj {
		if !slices.Contains([]string{"claims", "ttl", "setIat", "setJti"}, name) {
			return wantToken{}, "unknown field " + name
		}
	}
	claims, err := decodeObject(obj["claims"])
	if err != nil {
		return wantToken{}, "claims is not an object"
	}
	if maxBytes := j.rules.MaxClaimsBytes; maxBytes > 0 && len(obj["claims"]) > maxBytes {
		return wantToken{}, "claims larger than MaxClaimsBytes"
	}
	if why := j.audience(claims["aud"]); why != "" {
		return wantToken{}, why
	}
	names := topLevelNames(obj["claims"])
	ttl, why := wantTTL(obj["ttl"], limit)
	if why != "" {
		return wantToken{}, why
	}
	setIat, ok1 := wantFlag(obj["setIat"])
	setJti, ok2 := wantFlag(obj["setJti"])
	if !ok1 || !ok2 {
		return wantToken{}, "a flag is not a boolean"
	}
	var set []string // the claims the issuer sets, in the order it appends them
	if iss := j.rules.Issuer; iss != "" {
		switch v, has := claims["iss"]; {
		case !has:
			claims["iss"], set = iss, append(set, "iss")
		case v != iss:
			return wantToken{}, "claims.iss is not the issuer"
		}
	}
	switch exp, has := claims["exp"]; {
	case ttl > 0:
		claims["exp"], set = json.Number(strconv.FormatInt(now+ttl, 10)), append(set, "exp")
	case has:
		n, ok := exp.(json.Number)
		if !ok || numberAbove(string(n), now+limit) {
			return wantToken{}, "claims.exp is not a number up to now + T"
		}
	default:
		claims["exp"], set = json.Number(strconv.FormatInt(now+limit, 10)), append(set, "exp")
	}
	if setIat {
		claims["iat"], set = json.Number(strconv.FormatInt(now, 10)), append(set, "iat")
	}
	if setJti {
		delete(claims, "jti")
		set = append(set, "jti")
	}
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(set, n) })
	return wantToken{claims: claims, names: append(names, set...), setJti: setJti}, ""
}

// audience judges aud (nil when absent) by the allowed audiences.
func (j judge) audience(aud any) string {
	allowed := j.rules.Audiences
	if len(allowed) == 0 {
		return ""
	}
	var names []any
	switch v := aud.(type) {
	case string:
		names = []any{v}
	case []any:
		names = v
	}
	if len(names) == 0 {
		return "claims.aud absent, empty, or neither a string nor an array"
	}
	for _, n := range names {
		if s, ok := n.(string); !ok || !slices.Contains(allowed, s) {
			return "claims.aud names an audience not allowed"
		}
	}
	return ""
}

var integerText = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// wantTTL reads a ttl as the rules have it: absent, null or an integer
// written as one, from 0 to limit.
func wantTTL(raw json.RawMessage, limit int64) (int64, string) {
	if raw == nil || string(raw) == "null" {
		return 0, ""
	}
	if !integerText.Match(raw) {
		return 0, "ttl is not an integer written as one"
	}
	n, _ := new(big.Int).SetString(string(raw), 10)
	if n.Sign() < 0 || n.Cmp(big.NewInt(limit)) > 0 {
		return 0, "ttl is negative or above T"
	}
	return n.Int64(), ""
}

func wantFlag(raw json.RawMessage) (bool, bool) {
	if raw == nil {
		return false, true
	}
	var b *bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, false
	}
	return b != nil && *b, true
}

// numberAbove compares the JSON number text with bound exactly, with
// math/big; exponents too large to expand are decided by their sign.
func numberAbove(text string, bound int64) bool {
	mant, exp, _ := strings.Cut(strings.ToLower(text), "e")
	m, ok := new(big.Rat).SetString(mant)
	if !ok {
		panic("not a number: " + text)
	}
	e, err := strconv.Atoi(exp)
	if exp == "" {
		e, err = 0, nil
	}
	switch {
	case m.Sign() == 0:
		return 0 > bound
	case err != nil || e > 400: // beyond any int64, either way
		return m.Sign() > 0 && !strings.HasPrefix(exp, "-")
	case e < -400: // within 1 of zero
		return m.Sign() > 0 && bound < 0 || m.Sign() < 0 && bound < -1
	}
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(e, -e))), nil))
	if e < 0 {
		m.Quo(m, scale)
	} else {
		m.Mul(m, scale)
	}
	return m.Cmp(new(big.Rat).SetInt64(bound)) > 0
}

func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, fmt.Errorf("null")
	}
	return obj, nil
}

// tokens reads the valid JSON text as encoding/json's tokens. Numbers stay
// text: as float64, 1E700 would end the reading early.
func tokens(text []byte) func() (json.Token, bool) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	return func() (json.Token, bool) {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil, false
		}
		if err != nil {
			panic(fmt.Sprintf("encoding/json cannot read JSON it validated: %v", err))
		}
		return tok, true
	}
}

// topLevelNames lists the member names of the object raw, in order.
func topLevelNames(raw []byte) []string {
	next := tokens(raw)
	var names []string
	depth := 0
	expectName := false
	for {
		tok, ok := next()
		if !ok {
			return names
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				depth++
			} else {
				depth--
			}
			expectName = depth == 1
		case string:
			if depth == 1 && expectName {
				names = append(names, v)
				expectName = false
				continue
			}
			expectName = depth == 1
		default:
			expectName = depth == 1
		}
	}
}

// hasDuplicateName reports a member name given twice in any object of the
// valid JSON text, by encoding/json's reading of names.
func hasDuplicateName(text []byte) bool {
	type frame struct {
		names      map[string]bool // nil for an array
		expectName bool
	}
	next := tokens(text)
	var stack []*frame
	afterValue := func() {
		if len(stack) > 0 && stack[len(stack)-1].names != nil {
			stack[len(stack)-1].expectName = true
		}
	}
	for {
		tok, ok := next()
		if !ok {
			return false
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{names: map[string]bool{}, expectName: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				afterValue()
			}
		case string:
			if top := len(stack) - 1; top >= 0 && stack[top].names != nil && stack[top].expectName {
				if stack[top].names[v] {
					return true
				}
				stack[top].names[v], stack[top].expectName = true, false
				continue
			}
			afterValue()
		default:
			afterValue()
		}
	}
}

// responseTokens reads {"token":...} for one token, {"tokens":[...]} for
// a batch.
func responseTokens(t *testing.T, out []byte, n int) []string {
	t.Helper()
	var resp struct {
		Token  *string  `json:"token"`
		Tokens []string `json:"tokens"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response is not JSON: %s", out)
	}
	toks := resp.Tokens
	if resp.Token != nil {
		toks = append(toks, *resp.Token)
	}
	if len(toks) != n {
		t.Fatalf("%d tokens, want %d: %s", len(toks), n, out)
	}
	return toks
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func checkToken(t *testing.T, tok string, want wantToken) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(body) || hasDuplicateName(body) {
		t.Fatalf("claims are not JSON with each name once: %s", body)
	}
	got, err := decodeObject(body)
	if err != nil {
		t.Fatalf("claims are not an object: %s", body)
	}
	if want.setJti {
		if jti, _ := got["jti"].(string); !uuidV4.MatchString(jti) {
			t.Fatalf("jti %v is not a UUID v4", got["jti"])
		}
		delete(got, "jti")
	}
	if !reflect.DeepEqual(got, want.claims) {
		t.Fatalf("claims\n%s\nwant (encoding/json)\n%v", body, want.claims)
	}
	if names := topLevelNames(body); !slices.Equal(names, want.names) {
		t.Fatalf("claims in the order %q, want %q", names, want.names)
	}
}

// differentialSeed is a payload that stresses the scanner, named as its
// corpus file is.
type differentialSeed struct {
	name    string
	payload []byte
}

// differentialSeeds are committed as testdata/fuzz/FuzzMatchesEncodingJSON
// too (TestDifferentialCorpus).
func differentialSeeds() []differentialSeed {
	now := now0.Unix()
	bound := strconv.FormatInt(now+int64(differentialT/time.Second), 10)
	nest := func(n int, v string) string { return strings.Repeat("[", n) + v + strings.Repeat("]", n) }
	d := request.MaxDepth
	item := `{"claims":{"sub":"a"},"setJti":true}`
	batch := func(n int) string { return `{"batch":[` + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + `]}` }
	seeds := []struct{ name, payload string }{
		{"depth-at-limit", `{"claims":{"a":` + nest(d-2, "1") + `}}`},
		{"depth-past-limit", `{"claims":{"a":` + nest(d-1, "1") + `}}`},
		{"depth-batch-at-limit", `{"batch":[{"claims":{"a":` + nest(d-4, "1") + `}}]}`},
		{"depth-batch-past-limit", `{"batch":[{"claims":{"a":` + nest(d-3, "1") + `}}]}`},
		{"depth-objects", `{"claims":` + strings.Repeat(`{"a":`, 200) + "{}" + strings.Repeat("}", 200) + `}`},
		{"long-escapes", `{"claims":{"s":"` + strings.Repeat(`\"\\\/\b\f\n\r\t\u00e9\u0000`, 400) + `","t":"` + strings.Repeat("é€😀", 300) + `"}}`},
		{"surrogate-pair", `{"claims":{"s":"\ud83d\ude00","\ud83d\ude00":1}}`},
		{"lone-surrogates", `{"claims":{"s":"\ud800","t":"\udc00x","u":"\ude00\ud83d","\udbff":2}}`},
		{"lone-surrogate-names-collide", `{"claims":{"\ud800":1,"\udbff":2}}`},
		{"replacement-name-collides", `{"claims":{"\ud800":1,"\ufffd":2}}`},
		{"escaped-name-collides", `{"claims":{"a":1,"\u0061":2}}`},
		{"escaped-field-name", `{"\u0063laims":{},"t\u0074l":5}`},
		{"escaped-exp", `{"claims":{"\u0065xp":` + bound + `}}`},
		{"invalid-utf8", "{\"claims\":{\"s\":\"\xff\"}}"},
		{"overlong-utf8", "{\"claims\":{\"s\":\"\xc0\xaf\"}}"},
		{"encoded-surrogate-utf8", "{\"claims\":{\"s\":\"\xed\xa0\x80\"}}"},
		{"truncated-utf8", "{\"claims\":{\"s\":\"\xe2\x82\"}}"},
		{"exp-huge-exponent", `{"claims":{"exp":1e400}}`},
		{"exp-huge-negative", `{"claims":{"exp":-1e400}}`},
		{"exp-tiny", `{"claims":{"exp":1e-400}}`},
		{"exp-exponent-overflows", `{"claims":{"exp":1E+99999999999999999999}}`},
		{"exp-zero-huge-exponent", `{"claims":{"exp":0e99999999999}}`},
		{"exp-at-bound", `{"claims":{"exp":` + bound + `}}`},
		{"exp-bound-fraction", `{"claims":{"exp":` + bound + `.0000001}}`},
		{"exp-bound-zero-fraction", `{"claims":{"exp":` + bound + `.000}}`},
		{"exp-bound-exponent", `{"claims":{"exp":` + bound[:1] + "." + bound[1:] + "e" + strconv.Itoa(len(bound)-1) + `}}`},
		{"exp-beyond-int64", `{"claims":{"exp":9223372036854775808}}`},
		{"exp-minus-zero", `{"claims":{"exp":-0}}`},
		{"exp-string", `{"claims":{"exp":"1"}}`},
		{"ttl-rounds", `{"claims":{},"ttl":3600.0000000000001}`},
		{"ttl-underflows", `{"claims":{},"ttl":1e-400}`},
		{"ttl-zero-fraction", `{"claims":{},"ttl":30.0}`},
		{"ttl-exponent", `{"claims":{},"ttl":3e1}`},
		{"ttl-minus-zero", `{"claims":{},"ttl":-0}`},
		{"ttl-at-limit", `{"claims":{"exp":1},"ttl":3600}`},
		{"ttl-past-limit", `{"claims":{},"ttl":3601}`},
		{"ttl-beyond-int64", `{"claims":{},"ttl":99999999999999999999}`},
		{"ttl-null-flags-null", `{"claims":{"iat":1},"ttl":null,"setIat":null,"setJti":null}`},
		{"numbers-exact", `{"claims":{"a":-0,"b":0.10,"c":1E+2,"d":12345678901234567890123,"e":1e-400,"f":-0.0e-0}}`},
		{"leading-zero", `{"claims":{"a":01}}`},
		{"leading-zero-negative", `{"claims":{"a":-01}}`},
		{"leading-zero-fraction", `{"claims":{"a":00.5}}`},
		{"ttl-leading-zero", `{"claims":{},"ttl":030}`},
		{"whitespace-json", " \t\r\n{ \t\r\n\"claims\" \t\r\n: \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n[ \t\r\n1 \t\r\n, \t\r\n\"x y\" \t\r\n] \t\r\n} \t\r\n, \t\r\n\"ttl\" \t\r\n: \t\r\n5 \t\r\n} \t\r\n"},
		{"whitespace-vt", "{\"claims\":{\"a\":\v1}}"},
		{"whitespace-ff", "{\"claims\":{\"a\":1}\f}"},
		{"whitespace-nbsp", "{\"claims\":\u00a0{}}"},
		{"whitespace-nbsp-after", "{\"claims\":{}}\u00a0"},
		{"whitespace-bom", "\ufeff{\"claims\":{}}"},
		{"whitespace-line-separator", "{\"claims\":{}\u2028}"},
		{"whitespace-nul", "{\"claims\":{}\x00}"},
		{"control-in-string", "{\"claims\":{\"a\":\"\t\"}}"},
		{"duplicate-deep", `{"claims":{"a":[{"b":{"c":1,"c":2}}]}}`},
		{"duplicate-after-huge-number", `{"claims":{"a":1E700,"b":[-1e-700],"a":1}}`},
		{"names-after-huge-number", `{"claims":{"":1E700,"z":-1E700},"setIat":true}`},
		{"duplicate-field", `{"claims":{},"setIat":true,"setIat":false}`},
		{"duplicate-in-batch", `{"batch":[{"claims":{}},{"claims":{"x":{"y":1,"y":1}}}]}`},
		{"overrides-in-order", `{"claims":{"jti":"j","z":1,"iat":2,"exp":3,"a":4},"ttl":10,"setIat":true,"setJti":true}`},
		{"batch-at-limit", batch(request.MaxBatch)},
		{"batch-past-limit", batch(request.MaxBatch + 1)},
		{"batch-with-claims", `{"batch":[{"claims":{}}],"claims":{}}`},
		{"batch-item-batch", `{"batch":[{"claims":{},"batch":[]}]}`},
		{"field-case", `{"Claims":{}}`},
		{"empty-name", `{"claims":{"":1,"a":{"":2}}}`},
		{"trailing-data", `{"claims":{}} {}`},
		// For differentialRules()[1]: iss https://issuer.example.com/t,
		// audiences hotsock and chat, claims of 256 bytes, batches of 3.
		{"rules-iss-added", `{"claims":{"aud":"hotsock","sub":"a"},"ttl":5,"setIat":true}`},
		{"rules-iss-equal", `{"claims":{"iss":"https://issuer.example.com/t","aud":"chat"}}`},
		{"rules-iss-equal-escaped", `{"claims":{"iss":"https:\/\/issuer.example.com\/\u0074","aud":"chat"}}`},
		{"rules-iss-differs", `{"claims":{"iss":"https://issuer.example.com","aud":"chat"}}`},
		{"rules-iss-not-string", `{"claims":{"iss":null,"aud":"chat"}}`},
		{"rules-aud-missing", `{"claims":{"sub":"a","x":{"aud":"chat"}}}`},
		{"rules-aud-array", `{"claims":{"aud":["hotsock","chat"]}}`},
		{"rules-aud-array-refused", `{"claims":{"aud":["hotsock","other"]}}`},
		{"rules-aud-array-not-strings", `{"claims":{"aud":["hotsock",["chat"]]}}`},
		{"rules-aud-empty-array", `{"claims":{"aud":[]}}`},
		{"rules-aud-escaped", `{"claims":{"aud":"\u0068otsock"}}`},
		{"rules-aud-other", `{"claims":{"aud":"hotsock2"}}`},
		{"rules-claims-at-limit", `{"claims":{"aud":"chat","s":"` + strings.Repeat("x", 256-len(`{"aud":"chat","s":""}`)) + `"}}`},
		{"rules-claims-past-limit", `{"claims":{"aud":"chat","s":"` + strings.Repeat("x", 257-len(`{"aud":"chat","s":""}`)) + `"}}`},
		{"rules-claims-spaced-past-limit", `{"claims":{"aud":"chat","s":"` + strings.Repeat("x", 256-len(`{"aud":"chat","s":""}`)) + `" }}`},
		{"rules-batch-at-limit", `{"batch":[{"claims":{"aud":"chat"}},{"claims":{"aud":"chat"}},{"claims":{"aud":"chat"}}]}`},
		{"rules-batch-past-limit", `{"batch":[{"claims":{"aud":"chat"}},{"claims":{"aud":"chat"}},{"claims":{"aud":"chat"}},{"claims":{"aud":"chat"}}]}`},
	}
	out := make([]differentialSeed, len(seeds))
	for i, s := range seeds {
		out[i] = differentialSeed{s.name, []byte(s.payload)}
	}
	return out
}

// invokeSeeds are FuzzInvoke's seeds.
func invokeSeeds() []string {
	return []string{
		`{"claims":{"aud":"hotsock","channels":{"chat":{"subscribe":true}}},"ttl":30}`,
		`{"claims":{"exp":1,"iat":2,"jti":"x"},"setIat":true,"setJti":true}`,
		`{"claims":{},"ttl":1e3}`,
		`{"claims":{"a":"\u0000\ud800"}}`,
		`{"claims":{"a":1,"a":2}}`,
		`{"batch":[{"claims":{}}]}`,
		`{"claims":[]}`, `null`, `{`, ``,
	}
}

// corpusSeeds reads the committed corpus of the fuzz target name.
func corpusSeeds(tb testing.TB, name string) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
	if err != nil {
		tb.Fatal(err)
	}
	var seeds [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		v, err := parseCorpusFile(b)
		if err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
		seeds = append(seeds, v)
	}
	return seeds
}

const corpusHeader = "go test fuzz v1\n"

// parseCorpusFile reads a corpus file of one []byte value.
func parseCorpusFile(b []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte(corpusHeader+"[]byte("))
	if !ok {
		return nil, fmt.Errorf("not a corpus file of one []byte")
	}
	rest, ok = bytes.CutSuffix(bytes.TrimRight(rest, "\n"), []byte(")"))
	if !ok {
		return nil, fmt.Errorf("not a corpus file of one []byte")
	}
	s, err := strconv.Unquote(string(rest))
	return []byte(s), err
}

func corpusFile(payload []byte) []byte { return fmt.Appendf(nil, corpusHeader+"[]byte(%q)\n", payload) }

var updateCorpus = flag.Bool("update-corpus", false, "write differentialSeeds to testdata/fuzz/FuzzMatchesEncodingJSON")

// The stress seeds are committed as the fuzz target's corpus, so that a
// plain go test runs them and go test -fuzz starts from them.
func TestDifferentialCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzMatchesEncodingJSON")
	for _, seed := range differentialSeeds() {
		file := filepath.Join(dir, seed.name)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, corpusFile(seed.payload), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v: run go test -run TestDifferentialCorpus -update-corpus", err)
		}
		if v, err := parseCorpusFile(b); err != nil || !bytes.Equal(v, seed.payload) {
			t.Fatalf("%s differs from its seed (%v): run go test -run TestDifferentialCorpus -update-corpus", file, err)
		}
	}
}

// The judge of the fuzz target, on the seeds whose fate is plain: it must
// be able to tell the signer wrong.
func TestDifferentialJudge(t *testing.T) {
	accept := map[string]bool{
		"depth-at-limit": true, "depth-past-limit": false, "depth-batch-at-limit": true, "depth-batch-past-limit": false,
		"lone-surrogate-names-collide": false, "escaped-name-collides": false, "escaped-field-name": true,
		"invalid-utf8": false, "exp-huge-exponent": false, "exp-huge-negative": true, "exp-tiny": true,
		"exp-exponent-overflows": false, "exp-at-bound": true, "exp-bound-fraction": false, "exp-bound-zero-fraction": true,
		"exp-bound-exponent": true, "exp-beyond-int64": false, "ttl-rounds": false, "ttl-underflows": false,
		"ttl-zero-fraction": false, "ttl-exponent": false, "ttl-minus-zero": true, "ttl-past-limit": false,
		"ttl-beyond-int64": false, "numbers-exact": true, "leading-zero": false, "whitespace-json": true,
		"whitespace-vt": false, "whitespace-nbsp": false, "whitespace-bom": false, "duplicate-deep": false,
		"duplicate-after-huge-number": false, "names-after-huge-number": true,
		"batch-at-limit": true, "batch-past-limit": false, "field-case": false, "trailing-data": false,
	}
	// With the deployment's rules, the seeds written for them.
	acceptRuled := map[string]bool{
		"rules-iss-added": true, "rules-iss-equal": true, "rules-iss-equal-escaped": true, "rules-iss-differs": false,
		"rules-iss-not-string": false, "rules-aud-missing": false, "rules-aud-array": true, "rules-aud-array-refused": false,
		"rules-aud-array-not-strings": false, "rules-aud-empty-array": false, "rules-aud-escaped": true, "rules-aud-other": false,
		"rules-claims-at-limit": true, "rules-claims-past-limit": false, "rules-claims-spaced-past-limit": false,
		"rules-batch-at-limit": true, "rules-batch-past-limit": false,
	}
	for k, accept := range []map[string]bool{accept, acceptRuled} {
		rules := differentialRules()[k]
		iss, j := differentialIssuer(rules), newJudge(rules)
		for _, seed := range differentialSeeds() {
			want, ok := accept[seed.name]
			if !ok {
				continue
			}
			tokens, why := j.tokens(seed.payload)
			if (tokens != nil) != want {
				t.Errorf("rules %d: %s: judged %v (%s), want %v", k, seed.name, tokens != nil, why, want)
			}
			if _, err := iss.Invoke(context.Background(), seed.payload); (err == nil) != want {
				t.Errorf("rules %d: %s: the signer answers %v, want accepted %v", k, seed.name, err, want)
			}
		}
	}
	iss, j := differentialIssuer(request.Rules{}), newJudge(request.Rules{})
	// The judge tells numbers apart by their text.
	out, err := iss.Invoke(context.Background(), []byte(`{"claims":{"a":1.50}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := decodeObject(claimsOfResponse(t, out))
	w, _ := j.tokens([]byte(`{"claims":{"a":1.5}}`))
	if reflect.DeepEqual(got, w[0].claims) {
		t.Fatal("1.50 and 1.5 compare equal: numbers are not compared by their text")
	}
}

func claimsOfResponse(t *testing.T, out []byte) []byte {
	t.Helper()
	var resp struct{ Token string }
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	return []byte(claimsOf(t, resp.Token))
}
