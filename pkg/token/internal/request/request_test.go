package request

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

func batchOf(items ...string) string {
	return `{"batch":[` + strings.Join(items, ",") + `]}`
}

func TestParse(t *testing.T) {
	req, batch, err := Parse([]byte(`{"claims":{"a": 1},"ttl":5,"setIat":true}`), nil)
	if err != nil || batch != nil || req.TTL != 5 || !req.SetIat || req.SetJti || string(req.Claims()) != `{"a":1}` {
		t.Fatalf("%+v %v %v", req, batch, err)
	}
	_, batch, err = Parse([]byte(batchOf(`{"claims":{"i":0}}`, `{"claims":{"i":1},"ttl":9}`)), nil)
	if err != nil || len(batch) != 2 || string(batch[1].Claims()) != `{"i":1}` || batch[1].TTL != 9 {
		t.Fatalf("%+v %v", batch, err)
	}
}

// The members the request overrides leave the claims; the others stay in
// the caller's order, and a kept exp is found.
func TestParseDropsOverriddenClaims(t *testing.T) {
	tests := []struct {
		payload, claims, exp string
	}{
		{`{"claims":{"a":1,"exp":5,"iat":6,"jti":"j","z":2}}`, `{"a":1,"exp":5,"iat":6,"jti":"j","z":2}`, `5`},
		{`{"claims":{"a":1,"exp":5,"iat":6,"jti":"j","z":2},"ttl":3}`, `{"a":1,"iat":6,"jti":"j","z":2}`, ``},
		{`{"claims":{"jti":"j","iat":6,"exp":5},"setIat":true,"setJti":true}`, `{"exp":5}`, `5`},
		{`{"claims":{"jti":"j","exp": 5.50 ,"iat":6},"setJti":true}`, `{"exp":5.50,"iat":6}`, `5.50`},
		{`{"claims":{"exp":5},"ttl":1,"setIat":true,"setJti":true}`, `{}`, ``},
	}
	for _, tt := range tests {
		req, _, err := Parse([]byte(tt.payload), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.payload, err)
		}
		if string(req.Claims()) != tt.claims || string(req.exp) != tt.exp {
			t.Errorf("%s: claims %s exp %q, want %s and %q", tt.payload, req.Claims(), req.exp, tt.claims, tt.exp)
		}
	}
}

// A ttl is an integer written as one. float64 took 3600.0000000000001 for
// 3600 and 1e-400 for 0 (not set: the longest lifetime).
func TestTTLMustBeWrittenAsAnInteger(t *testing.T) {
	const limit = 3600
	tests := []struct {
		name, ttl string
		want      int64  // TTL when accepted
		err       string // the error of Parse or Expiry
	}{
		{"digits", `30`, 30, ""},
		{"zero is not set", `0`, 0, ""},
		{"minus zero is zero", `-0`, 0, ""},
		{"null is not set", `null`, 0, ""},
		{"the limit", `3600`, 3600, ""},
		{"long digits", `000`, 0, "invalid JSON at byte"},
		{"leading zero", `030`, 0, "invalid JSON at byte"},
		{"rounds to an integer", `3600.0000000000001`, 0, "ttl must be an integer number of seconds, got a number with a fraction"},
		{"zero fraction", `30.0`, 0, "ttl must be an integer number of seconds, got a number with a fraction"},
		{"a half", `1.5`, 0, "ttl must be an integer number of seconds, got a number with a fraction"},
		{"exponent", `3e1`, 0, "ttl must be an integer number of seconds, got a number with an exponent"},
		{"underflows to zero", `1e-400`, 0, "ttl must be an integer number of seconds, got a number with an exponent"},
		{"huge exponent", `1E400`, 0, "ttl must be an integer number of seconds, got a number with an exponent"},
		{"negative", `-1`, 0, "ttl is -1, must not be negative"},
		{"negative beyond int64", `-99999999999999999999`, 0, "ttl is -99999999999999999999, must not be negative"},
		{"negative and long", "-1" + strings.Repeat("0", 40), 0, "ttl is a number 42 characters long, must not be negative"},
		{"above the limit", `3601`, 3601, "ttl is 3601, the limit is 3600 seconds (MAX_TOKEN_TTL_SECONDS)"},
		{"beyond int64", `9223372036854775808`, math.MaxInt64, "ttl is 9223372036854775807 or more, the limit is 3600 seconds (MAX_TOKEN_TTL_SECONDS)"},
		{"far beyond int64", "1" + strings.Repeat("0", 400), math.MaxInt64, "ttl is 9223372036854775807 or more, the limit is 3600 seconds (MAX_TOKEN_TTL_SECONDS)"},
		{"string", `"30"`, 0, "ttl must be an integer number of seconds, got a string"},
		{"boolean", `true`, 0, "ttl must be an integer number of seconds, got a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, form := range []struct{ payload, prefix string }{
				{`{"claims":{},"ttl":` + tt.ttl + `}`, ""},
				{batchOf(`{"claims":{}}`, `{"claims":{},"ttl":`+tt.ttl+`}`), "batch[1]."},
			} {
				req, batch, err := Parse([]byte(form.payload), nil)
				if err == nil && batch != nil {
					req = batch[1]
				}
				if err == nil {
					if req.TTL != tt.want {
						t.Errorf("%s: TTL %d, want %d", form.payload, req.TTL, tt.want)
					}
					_, err = req.Expiry(1_800_000_000, limit)
				}
				want := tt.err
				if strings.HasPrefix(want, "ttl") {
					want = form.prefix + want
				}
				switch {
				case want == "" && err != nil:
					t.Errorf("%s: %v", form.payload, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s: error %v, want %q", form.payload, err, want)
				}
			}
		})
	}
}

// claims.exp is compared with now + T exactly, on its decimal text: in
// float64, now + T plus 100 ns passed, and an exp beyond float64's range
// had a message contradicting itself ("must be a number ..., got a
// number") or an overflowed one.
func TestExpIsComparedExactly(t *testing.T) {
	const now, limit = 1_800_000_000, 3600
	tests := []struct{ exp, err string }{
		{`1800003600`, ""},
		{`1800003600.0000000`, ""},
		{`1800003599.99999999999999999999`, ""},
		{`1.8000036e9`, ""},
		{`18000036E+2`, ""},
		{`180000360000e-2`, ""},
		{`1800003600.0000001`, "claims.exp is more than 3600 seconds from now, the limit is 3600 seconds (MAX_TOKEN_TTL_SECONDS)"},
		{`1800003600.00000000000000000001`, "claims.exp is more than 3600 seconds from now, the limit is 3600 seconds"},
		{`1.80000360000001e9`, "claims.exp is more than 3600 seconds from now, the limit is 3600 seconds"},
		{`1800003601`, "claims.exp is 3601 seconds from now, the limit is 3600 seconds (MAX_TOKEN_TTL_SECONDS)"},
		{`18000037e2`, "claims.exp is 3700 seconds from now, the limit is 3600 seconds"},
		{`9223372036854775807`, "claims.exp is 9223372035054775807 seconds from now, the limit is 3600 seconds"},
		{`9223372036854775808`, "claims.exp is beyond 9223372036854775807 seconds since the epoch, the limit is 3600 seconds from now (MAX_TOKEN_TTL_SECONDS)"},
		{`9.3e18`, "claims.exp is beyond 9223372036854775807 seconds since the epoch, the limit is 3600 seconds from now"},
		{`1e400`, "claims.exp is beyond 9223372036854775807 seconds since the epoch, the limit is 3600 seconds from now"},
		{`1e99999999999999999999999`, "claims.exp is beyond 9223372036854775807 seconds since the epoch"},
		// Earlier than the bound, however far: the token is expired, not
		// long-lived.
		{`-1e400`, ""},
		{`1e-400`, ""},
		{`-0`, ""},
		{`0`, ""},
		{`-9223372036854775809`, ""},
		{`1e-99999999999999999999999`, ""},
		{`"soon"`, "claims.exp must be a number of seconds since the epoch, got a string"},
		{`null`, "claims.exp must be a number of seconds since the epoch, got null"},
		{`{}`, "claims.exp must be a number of seconds since the epoch, got an object"},
	}
	for _, tt := range tests {
		for _, form := range []struct{ payload, prefix string }{
			{`{"claims":{"exp":` + tt.exp + `}}`, ""},
			{batchOf(`{"claims":{}}`, `{"claims":{}}`, `{"claims":{"sub":"s","exp":`+tt.exp+`}}`), "batch[2]."},
		} {
			req, batch, err := Parse([]byte(form.payload), nil)
			if err != nil {
				t.Fatalf("%s: %v", form.payload, err)
			}
			if batch != nil {
				req = batch[2]
			}
			exp, err := req.Expiry(now, limit)
			if tt.err == "" {
				if err != nil || exp.Set {
					t.Errorf("%s: %+v %v, want the caller's exp kept", form.payload, exp, err)
				}
				continue
			}
			want := form.prefix + tt.err
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want %q", form.payload, err, want)
			}
		}
	}
}

func TestExpiryRules(t *testing.T) {
	const now, limit = 1_800_000_000, 3600
	tests := []struct {
		payload string
		want    Expiry
	}{
		{`{"claims":{}}`, Expiry{At: now + limit, Set: true}},
		{`{"claims":{},"ttl":0}`, Expiry{At: now + limit, Set: true}},
		{`{"claims":{},"ttl":10}`, Expiry{At: now + 10, Set: true}},
		{`{"claims":{"exp":1900000000},"ttl":10}`, Expiry{At: now + 10, Set: true}},
		{`{"claims":{"exp":1800000060}}`, Expiry{}},
	}
	for _, tt := range tests {
		req, _, err := Parse([]byte(tt.payload), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := req.Expiry(now, limit); err != nil || got != tt.want {
			t.Errorf("%s: %+v %v, want %+v", tt.payload, got, err, tt.want)
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		text string
		want number
	}{
		{`0`, number{}},
		{`-0`, number{neg: true}},
		{`-0.0e-0`, number{neg: true}},
		{`12`, number{integer: 12}},
		{`12.50`, number{integer: 12, fraction: true}},
		{`12.00`, number{integer: 12}},
		{`1.25e1`, number{integer: 12, fraction: true}},
		{`1.25e2`, number{integer: 125}},
		{`1.25E+3`, number{integer: 1250}},
		{`125e-2`, number{integer: 1, fraction: true}},
		{`100e-2`, number{integer: 1}},
		{`0.001e3`, number{integer: 1}},
		{`0.0001e3`, number{fraction: true}},
		{`0e999999999999999999999`, number{}},
		{`9223372036854775807`, number{integer: math.MaxInt64}},
		{`922337203685477580.7e1`, number{integer: math.MaxInt64}},
		{`9223372036854775808`, number{huge: true}},
		{`-9223372036854775808`, number{neg: true, huge: true}},
		{`1e19`, number{huge: true}},
		{`1e18`, number{integer: 1e18}},
		{`5e-999999999999999999999`, number{fraction: true}},
	}
	for _, tt := range tests {
		if got := parseNumber([]byte(tt.text)); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func TestNumberAbove(t *testing.T) {
	tests := []struct {
		n     number
		bound int64
		want  bool
	}{
		{number{integer: 5}, 5, false},
		{number{integer: 5, fraction: true}, 5, true},
		{number{integer: 4, fraction: true}, 5, false},
		{number{integer: 6}, 5, true},
		{number{huge: true}, math.MaxInt64, true},
		{number{neg: true, huge: true}, 5, false},
		{number{neg: true}, 0, false},
		{number{neg: true, integer: 3}, -5, true},
		{number{neg: true, integer: 5}, -5, false},
		{number{neg: true, integer: 4, fraction: true}, -5, true},
		{number{neg: true, integer: 5, fraction: true}, -5, false},
	}
	for _, tt := range tests {
		if got := tt.n.above(tt.bound); got != tt.want {
			t.Errorf("%+v above %d: %v, want %v", tt.n, tt.bound, got, tt.want)
		}
	}
}

// nest wraps v in n arrays.
func nest(n int, v string) string { return strings.Repeat("[", n) + v + strings.Repeat("]", n) }

// Depth counts from the payload's own braces, as encoding/json counts it:
// nothing it refuses for depth is accepted, and what it accepts at the
// limit is. The claims used to count from their own brace, one level short
// for a request and three for a batch item.
func TestDepthCountsFromThePayload(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		ok      bool
	}{
		{"claims at the limit", `{"claims":{"a":` + nest(MaxDepth-2, "1") + `}}`, true},
		{"claims past the limit", `{"claims":{"a":` + nest(MaxDepth-1, "1") + `}}`, false},
		{"objects at the limit", `{"claims":` + strings.Repeat(`{"a":`, MaxDepth-1) + "1" + strings.Repeat("}", MaxDepth-1) + `}`, true},
		{"objects past the limit", `{"claims":` + strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth+1) + `}`, false},
		{"batch claims at the limit", batchOf(`{"claims":{"a":` + nest(MaxDepth-4, "1") + `}}`), true},
		{"batch claims past the limit", batchOf(`{"claims":{"a":` + nest(MaxDepth-3, "1") + `}}`), false},
		{"ttl past the limit", `{"claims":{},"ttl":` + nest(MaxDepth, "1") + `}`, false},
		{"batch item past the limit", batchOf(`{"claims":{}}`, nest(MaxDepth-1, "1")), false},
		{"no object, past the limit", nest(MaxDepth+1, ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if json.Valid([]byte(tt.payload)) != tt.ok {
				t.Fatalf("encoding/json disagrees with the test: Valid %v", !tt.ok)
			}
			_, _, err := Parse([]byte(tt.payload), nil)
			switch {
			case tt.ok && err != nil:
				t.Fatal(err)
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("nested deeper than %d levels", MaxDepth))):
				t.Fatalf("error %v, want the depth limit", err)
			}
		})
	}
}

// payload is internal/perf's Payload, the request every benchmarked path
// signs (perf imports this package's importer, so it cannot be imported).
const payload = `{"claims":{"aud":"hotsock","sub":"user-1234","channels":{"chat":{"subscribe":true,"publish":false}},"umd":{"name":"Ada"}},"ttl":300,"setIat":true,"setJti":true}`

func BenchmarkParse(b *testing.B) {
	item := strings.TrimSuffix(strings.TrimPrefix(payload, "{"), "}")
	items := make([]string, 100)
	for i := range items {
		items[i] = "{" + item + "}"
	}
	for _, bm := range []struct {
		name    string
		payload []byte
	}{
		{"single", []byte(payload)},
		{"batch100", []byte(batchOf(items...))},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Parse(bm.payload, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
