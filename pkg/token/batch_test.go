package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/token/internal/request"
)

func invokeBatch(t *testing.T, iss *Issuer, payload string) ([]string, error) {
	t.Helper()
	out, err := iss.Invoke(context.Background(), []byte(payload))
	if err != nil {
		return nil, err
	}
	var resp struct {
		Tokens []string `json:"tokens"`
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("response %s is not {\"tokens\":[...]}: %v", out, err)
	}
	return resp.Tokens, nil
}

func batchOf(items ...string) string {
	return `{"batch":[` + strings.Join(items, ",") + `]}`
}

// Tokens come back in the order of the items, each item following the
// rules of a single request.
func TestBatchOrderAndRules(t *testing.T) {
	for _, alg := range keys.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			iss, rec, _ := newIssuer(t, alg)
			var items []string
			for i := range 7 {
				items = append(items, fmt.Sprintf(`{"claims":{"sub":"user-%d","n":%d},"ttl":%d,"setIat":%v}`, i, i, 10+i, i%2 == 0))
			}
			toks, err := invokeBatch(t, iss, batchOf(items...))
			if err != nil {
				t.Fatal(err)
			}
			if len(toks) != 7 {
				t.Fatalf("%d tokens for 7 items", len(toks))
			}
			for i, tok := range toks {
				c := verify(t, tok, rec, now0)
				if c["sub"] != fmt.Sprintf("user-%d", i) || c["n"] != float64(i) || c["exp"] != float64(now0.Unix()+10+int64(i)) {
					t.Errorf("token %d has claims %v", i, c)
				}
				if _, hasIat := c["iat"]; hasIat != (i%2 == 0) {
					t.Errorf("token %d: iat %v, setIat %v", i, c["iat"], i%2 == 0)
				}
			}
		})
	}
}

// A batch answers {"tokens":[...]} even for one item, and the hotsock
// README request works as a batch item.
func TestBatchOfOne(t *testing.T) {
	iss, rec, _ := newIssuer(t, keys.ES256)
	toks, err := invokeBatch(t, iss, batchOf(`{"claims":{"aud":"hotsock","channels":{"chat":{"subscribe":true}}},"ttl":30}`))
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens %v, error %v", toks, err)
	}
	if c := verify(t, toks[0], rec, now0); c["aud"] != "hotsock" {
		t.Fatalf("claims %v", c)
	}
}

func TestBatchErrors(t *testing.T) {
	now := now0.Unix()
	ok := `{"claims":{"sub":"a"}}`
	many := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = ok
		}
		return batchOf(items...)
	}
	tests := []struct{ name, payload, want string }{
		{"empty", `{"batch":[]}`, "batch is empty: it must hold 1 to 1000 requests"},
		{"over the limit", many(MaxBatch + 1), "batch holds 1001 requests, the limit is 1000"},
		{"not an array", `{"batch":{"claims":{}}}`, "batch must be an array of 1 to 1000 requests, got an object"},
		{"null", `{"batch":null}`, "batch must be an array of 1 to 1000 requests, got null"},
		{"with top-level claims", `{"batch":[` + ok + `],"claims":{}}`, "batch cannot be combined with claims, ttl, setIat or setJti"},
		{"with top-level ttl", `{"ttl":5,"batch":[` + ok + `]}`, "batch cannot be combined with claims, ttl, setIat or setJti"},
		{"item not an object", batchOf(ok, `"x"`), "batch[1] must be a JSON object like"},
		{"item without claims", batchOf(ok, ok, `{"ttl":5}`), "batch[2].claims is required and must be a JSON object"},
		{"item with claims not an object", batchOf(`{"claims":[1]}`), "batch[0].claims must be a JSON object, got an array"},
		{"item with unknown field", batchOf(ok, ok, `{"claims":{},"tll":30}`), `unknown field "tll" in batch[2]`},
		{"item with a batch", batchOf(`{"claims":{},"batch":[]}`), `unknown field "batch" in batch[0]`},
		{"item ttl too long", batchOf(ok, ok, ok, `{"claims":{},"ttl":5000}`), "batch[3].ttl is 5000, the limit is 3600 seconds (MAX_TOKEN_TTL_SECONDS)"},
		{"item ttl negative", batchOf(ok, `{"claims":{},"ttl":-1}`), "batch[1].ttl is -1, must not be negative"},
		{"item ttl a string", batchOf(`{"claims":{},"ttl":"30"}`), "batch[0].ttl must be an integer number of seconds, got a string"},
		{"item flag not a boolean", batchOf(ok, `{"claims":{},"setJti":1}`), "batch[1].setJti must be true or false, got a number"},
		{"item exp too late", batchOf(ok, `{"claims":{"exp":`+itoa(now+3601)+`}}`), "batch[1].claims.exp is 3601 seconds from now, the limit is 3600 seconds"},
		{"item exp not a number", batchOf(`{"claims":{"exp":"soon"}}`), "batch[0].claims.exp must be a number"},
		{"item with a duplicate claim", batchOf(ok, `{"claims":{"sub":"a","sub":"b"}}`), `batch[1].claims names the member "sub" more than once`},
		{"item field twice", batchOf(`{"claims":{},"ttl":1,"ttl":2}`), `batch[0] names the field "ttl" more than once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, _, _ := newIssuer(t, keys.ES256)
			signs := countSigns(iss)
			_, err := invokeBatch(t, iss, tt.payload)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !IsRequestError(err) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if n := signs.Load(); n != 0 {
				t.Fatalf("%d tokens signed for a batch that fails", n)
			}
		})
	}
}

// The documented limit itself is accepted.
func TestBatchAtTheLimit(t *testing.T) {
	iss, rec, _ := newIssuer(t, keys.ES256)
	items := make([]string, MaxBatch)
	for i := range items {
		items[i] = fmt.Sprintf(`{"claims":{"i":%d},"setJti":true}`, i)
	}
	toks, err := invokeBatch(t, iss, batchOf(items...))
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != MaxBatch {
		t.Fatalf("%d tokens", len(toks))
	}
	jtis := map[any]bool{}
	for _, i := range []int{0, 1, 500, MaxBatch - 1} {
		c := verify(t, toks[i], rec, now0)
		if c["i"] != float64(i) {
			t.Fatalf("token %d carries i=%v", i, c["i"])
		}
		jtis[c["jti"]] = true
	}
	if len(jtis) != 4 {
		t.Fatal("batch items share a jti")
	}
}

// countingSigner wraps a key's signer to count calls and in-flight calls.
type countingSigner struct {
	Signer
	calls, inFlight, maxInFlight atomic.Int64
	remote                       int // MaxInFlight; 0: not remote
	fail                         func(call int64) error
	failInput                    func(input []byte) error
	hold                         chan struct{} // if set, the first call waits for a second to arrive
	once                         sync.Once
}

func (c *countingSigner) Sign(ctx context.Context, input []byte) ([]byte, error) {
	n := c.calls.Add(1)
	cur := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for {
		m := c.maxInFlight.Load()
		if cur <= m || c.maxInFlight.CompareAndSwap(m, cur) {
			break
		}
	}
	if c.hold != nil {
		if n == 1 {
			select { // a second call arriving proves concurrency
			case <-c.hold:
			case <-time.After(10 * time.Second):
			}
		} else {
			c.once.Do(func() { close(c.hold) })
		}
	}
	if c.fail != nil {
		if err := c.fail(n); err != nil {
			return nil, err
		}
	}
	if c.failInput != nil {
		if err := c.failInput(input); err != nil {
			return nil, err
		}
	}
	return c.Signer.Sign(ctx, input)
}

type remoteSigner struct{ *countingSigner }

func (r remoteSigner) MaxInFlight() int { return r.remote }

// countSigns makes iss sign through a countingSigner and returns its call
// counter.
func countSigns(iss *Issuer) *atomic.Int64 {
	c := wrapSigner(iss, 0)
	return &c.calls
}

// wrapSigner routes iss's signing through a countingSigner, remote (a
// RemoteSigner with MaxInFlight remote) when remote > 0.
func wrapSigner(iss *Issuer, remote int) *countingSigner {
	c := &countingSigner{remote: remote}
	inner := iss.keys
	var once sync.Once
	var wrapped *Key
	iss.keys = keyFunc(func(ctx context.Context) (*Key, error) {
		k, err := inner.Key(ctx)
		if err != nil {
			return nil, err
		}
		once.Do(func() {
			c.Signer = k.signer
			var s Signer = c
			if remote > 0 {
				s = remoteSigner{c}
			}
			wrapped = NewKey(k.Kid, k.Alg, s)
		})
		return wrapped, nil
	})
	return c
}

type keyFunc func(context.Context) (*Key, error)

func (f keyFunc) Key(ctx context.Context) (*Key, error) { return f(ctx) }

// A local key signs a batch with up to WithBatchWorkers (GOMAXPROCS by
// default) signatures at once, a remote one with up to MaxInFlight; the
// order of the answer is kept either way.
func TestBatchConcurrencyFollowsTheSigner(t *testing.T) {
	items := make([]string, 40)
	for i := range items {
		items[i] = fmt.Sprintf(`{"claims":{"i":%d}}`, i)
	}
	for _, c := range []struct {
		name            string
		workers, remote int // WithBatchWorkers; MaxInFlight (0: local)
		most            int64
	}{
		{"local, 1 worker", 1, 0, 1},
		{"local, 4 workers", 4, 0, 4},
		{"remote, MaxInFlight=1", 4, 1, 1},
		{"remote, MaxInFlight=4", 1, 4, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			iss, rec, _ := newIssuer(t, keys.ES256, WithBatchWorkers(c.workers))
			s := wrapSigner(iss, c.remote)
			if c.most > 1 {
				s.hold = make(chan struct{})
			}
			toks, err := invokeBatch(t, iss, batchOf(items...))
			if err != nil {
				t.Fatal(err)
			}
			for i, tok := range toks {
				if got := verify(t, tok, rec, now0)["i"]; got != float64(i) {
					t.Fatalf("token %d carries i=%v: order lost", i, got)
				}
			}
			maxIn := s.maxInFlight.Load()
			switch {
			case s.calls.Load() != int64(len(items)):
				t.Fatalf("%d Sign calls for %d items", s.calls.Load(), len(items))
			case c.most == 1 && maxIn != 1:
				t.Fatalf("%d calls in flight, want 1", maxIn)
			case c.most > 1 && (maxIn < 2 || maxIn > c.most):
				t.Fatalf("%d calls in flight, want 2 to %d", maxIn, c.most)
			}
		})
	}
}

// failing returns a signer failure for the items whose claims carry
// "fail":true: which items fail depends on the request alone.
func failing(input []byte) error {
	dot := strings.IndexByte(string(input), '.')
	claims, _ := base64.RawURLEncoding.DecodeString(string(input[dot+1:]))
	if strings.Contains(string(claims), `"fail":true`) {
		return errors.New("kms: throttled")
	}
	return nil
}

// A failed signature fails the batch, naming the lowest item that failed,
// whatever the scheduling, and stops the rest.
func TestBatchSignFailure(t *testing.T) {
	items := make([]string, 200)
	for i := range items {
		items[i] = fmt.Sprintf(`{"claims":{"i":%d,"fail":%v}}`, i, i == 37 || i == 38 || i == 120)
	}
	for _, c := range []struct {
		name            string
		workers, remote int
	}{{"in turn", 1, 0}, {"4 workers", 4, 0}, {"remote, 8 in flight", 1, 8}} {
		t.Run(c.name, func(t *testing.T) {
			for range 20 { // the same answer every time
				iss, _, _ := newIssuer(t, keys.ES256, WithBatchWorkers(c.workers))
				s := wrapSigner(iss, c.remote)
				s.failInput = failing
				_, err := invokeBatch(t, iss, batchOf(items...))
				var se *SigningError
				if !errors.As(err, &se) || !strings.Contains(err.Error(), "batch[37]: sign with key ") ||
					!strings.Contains(err.Error(), "kms: throttled") {
					t.Fatalf("error %v, want a SigningError naming batch[37]", err)
				}
				if n := s.calls.Load(); n >= int64(len(items)) {
					t.Fatalf("%d Sign calls: the rest was not stopped", n)
				}
			}
		})
	}
}

// claimsOf returns the claims segment of tok as signed, byte for byte.
func claimsOf(t *testing.T, tok string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Claims keep the caller's order and bytes, without insignificant
// whitespace; exp, iat and jti follow them once each.
func TestClaimsAreCompactedInOrder(t *testing.T) {
	iss, rec, _ := newIssuer(t, keys.ES256)
	tok, err := invoke(t, iss, "{ \"claims\" : {\n \"z\" : [1, 2.50, {\"b\" : \"x y\\\"}\"}],\t\"a\":\"\\u00e9\\n\", \"exp\": 1, \"iat\" :2, \"jti\":\"mine\", \"m\":{ } } ,\"ttl\":10, \"setIat\":true, \"setJti\":true }")
	if err != nil {
		t.Fatal(err)
	}
	verify(t, tok, rec, now0)
	got := claimsOf(t, tok)
	want := `{"z":[1,2.50,{"b":"x y\"}"}],"a":"\u00e9\n","m":{},"exp":` + itoa(now0.Unix()+10) + `,"iat":` + itoa(now0.Unix()) + `,"jti":"`
	if !strings.HasPrefix(got, want) || strings.Count(got, `"exp"`) != 1 || strings.Count(got, `"iat"`) != 1 || strings.Count(got, `"jti"`) != 1 {
		t.Fatalf("claims\n%s\nwant a prefix\n%s", got, want)
	}
	// An exp within T without ttl stays where the caller put it.
	tok, err = invoke(t, iss, `{"claims":{"exp":`+itoa(now0.Unix()+60)+`,"sub":"s"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := claimsOf(t, tok); got != `{"exp":`+itoa(now0.Unix()+60)+`,"sub":"s"}` {
		t.Fatalf("claims %s", got)
	}
	// Empty claims get exp alone.
	tok, err = invoke(t, iss, `{"claims":{}}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := claimsOf(t, tok); got != `{"exp":`+itoa(now0.Unix()+3600)+`}` {
		t.Fatalf("claims %s", got)
	}
}

func TestRequestJSONErrors(t *testing.T) {
	tests := []struct{ payload, want string }{
		{`{"claims":{"a":01}}`, "invalid JSON at byte"},
		{`{"claims":{"a":1,}}`, "invalid JSON at byte"},
		{`{"claims":{"a":"` + "\x01" + `"}}`, "invalid JSON at byte 16: control character in a string"},
		{`{"claims":{"a":"\x"}}`, "invalid JSON at byte"},
		{`{"claims":{"a":tru}}`, "invalid JSON at byte"},
		{`{"claims":{"a":1}} x`, "invalid JSON at byte"},
		{`{"claims":{"a":1}`, "invalid JSON at byte"},
		{`{"claims":{"a":[1,2}}`, "invalid JSON at byte"},
		{`{"claims":{"a":"` + "\xff" + `"}}`, "payload must be UTF-8 JSON (invalid UTF-8 at byte 16)"},
		{``, "payload must be a JSON object"},
		{`null`, "payload must be a JSON object like {\"claims\":{...},\"ttl\":30,\"setIat\":true,\"setJti\":true} (got null)"},
		{`"claims"`, "(got a string)"},
		{strings.Repeat("[", request.MaxDepth+2), "nested deeper than 10000 levels"},
		{`{"claims":{"a":` + strings.Repeat("[", request.MaxDepth+1) + strings.Repeat("]", request.MaxDepth+1) + `}}`, "nested deeper than 10000 levels"},
	}
	iss, _, _ := newIssuer(t, keys.ES256)
	for _, tt := range tests {
		_, err := invoke(t, iss, tt.payload)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !IsRequestError(err) {
			name := tt.payload
			if len(name) > 60 {
				name = name[:60] + "..."
			}
			t.Errorf("%s: error %v, want %q", name, err, tt.want)
		}
	}
}

// A name given twice is refused wherever it is: a verifier taking the first
// and another taking the last would read different claims.
func TestDuplicateNamesAreRefused(t *testing.T) {
	tests := []struct{ payload, want string }{
		{`{"claims":{"sub":"a","sub":"b"}}`, `claims names the member "sub" more than once`},
		{`{"claims":{"exp":1,"\u0065xp":2}}`, `claims names the member "exp" more than once`},
		{`{"claims":{"jti":"a","jti":"b"},"setJti":true}`, `claims names the member "jti" more than once`},
		{`{"claims":{"channels":{"chat":{"subscribe":false,"subscribe":true}}}}`, `claims.channels.chat names the member "subscribe" more than once`},
		{`{"claims":{"a":[{"x":1},{"x":1,"x":2}]}}`, `claims.a[1] names the member "x" more than once`},
		{`{"claims":{"a":[[0,{"y":{"x":1,"x":2}}]]}}`, `claims.a[0][1].y names the member "x" more than once`},
		{`{"claims":{},"claims":{}}`, `the request names the field "claims" more than once`},
		{`{"claims":{},"ttl":1,"t\u0074l":2}`, `the request names the field "ttl" more than once`},
	}
	iss, _, _ := newIssuer(t, keys.ES256)
	for _, tt := range tests {
		_, err := invoke(t, iss, tt.payload)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !IsRequestError(err) {
			t.Errorf("%s: error %v, want %q", tt.payload, err, tt.want)
		}
	}
	// Many distinct names (past the linear search) are fine; a repeat among
	// them is not.
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf(`"c%d":%d`, i, i))
	}
	if _, err := invoke(t, iss, `{"claims":{`+strings.Join(names, ",")+`}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, iss, `{"claims":{`+strings.Join(names, ",")+`,"c7":0}}`); err == nil || !strings.Contains(err.Error(), `"c7" more than once`) {
		t.Fatalf("error %v", err)
	}
}

func TestDERToJOSEStrict(t *testing.T) {
	good := []byte{0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07}
	out, err := DERToJOSE(good, 64)
	if err != nil || out[31] != 5 || out[63] != 7 {
		t.Fatalf("%x %v", out, err)
	}
	for name, der := range map[string][]byte{
		"trailing byte":     append(append([]byte{}, good...), 0),
		"zero r":            {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x07},
		"negative r":        {0x30, 0x06, 0x02, 0x01, 0x85, 0x02, 0x01, 0x07},
		"padded r":          {0x30, 0x07, 0x02, 0x02, 0x00, 0x05, 0x02, 0x01, 0x07},
		"short sequence":    {0x30, 0x09, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07},
		"one integer":       {0x30, 0x03, 0x02, 0x01, 0x05},
		"three integers":    {0x30, 0x09, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07, 0x02, 0x01, 0x01},
		"long form too low": {0x30, 0x81, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07},
		"empty integer":     {0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x07},
	} {
		if _, err := DERToJOSE(der, 64); err == nil {
			t.Errorf("%s: accepted %x", name, der)
		}
	}
}
