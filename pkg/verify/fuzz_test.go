package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzParseObject holds the scanner to encoding/json: whatever it accepts,
// encoding/json reads as an object with the same members and values;
// whatever it refuses as bad syntax, encoding/json refuses too. It is
// stricter on purpose in three ways only: a name twice in one object,
// invalid UTF-8, and nesting beyond maxDepth.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a":1} `, `{"a":"b","c":[1,2,{"d":null}],"e":{"f":true,"g":false}}`,
		`{"a":-0.5e+10,"b":0,"c":1E3}`, `{"\u0061":"\ud83d\ude00","b":"\ud800","c":"\"\\\/\b\f\n\r\t"}`,
		`{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":"\x01"}`,
		`[1]`, `"x"`, `{"a":1}x`, `{"a":1,}`, "{\"a\":\"\xff\"}", `{"a":[[[[[[[[[[]]]]]]]]]]}`,
		`{"a":tru}`, `{"a":nul}`, `{"a" 1}`, `{,}`, `{"a":"\u12"}`, `{"a":"\q"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		members, err := parseObject(data, nil)
		valid := json.Valid(data)
		var obj map[string]json.RawMessage
		isObject := json.Unmarshal(data, &obj) == nil
		switch {
		case err == nil:
			if !isObject {
				t.Fatalf("accepted %q, which encoding/json does not read as an object", data)
			}
			if len(members) != len(obj) {
				t.Fatalf("%d members, encoding/json %d", len(members), len(obj))
			}
			for _, m := range members {
				raw, ok := obj[string(m.name)]
				if !ok || !bytes.Equal(raw, m.value) {
					t.Fatalf("member %q = %s, encoding/json %s", m.name, m.value, raw)
				}
				var want string
				if got, ok := decodeString(m.value); ok {
					if json.Unmarshal(m.value, &want) != nil || string(got) != want {
						t.Fatalf("string %s decoded as %q, encoding/json %q", m.value, got, want)
					}
				}
			}
		case errors.Is(err, errDuplicate), errors.Is(err, errUTF8), errors.Is(err, errDepth):
		case errors.Is(err, errNotObject):
			if !valid || isObject {
				t.Fatalf("%q: not an object, but encoding/json valid=%v object=%v", data, valid, isObject)
			}
		default:
			if valid {
				t.Fatalf("%q refused (%v), encoding/json accepts it", data, err)
			}
		}
	})
}

// FuzzVerify drives the whole token path: token as given, and header and
// payload signed with the issuer's key, so that the claims are reached too.
// Nothing may panic, every refusal is an *Error with a reason, and every
// token accepted is accepted by golang-jwt with the same rules, with the
// claims encoding/json reads.
func FuzzVerify(f *testing.F) {
	c := newClock()
	key := newKey(f, "ES256", "k1")
	o := newOrigin(f, key)
	v := newTestVerifier(f, Config{Issuer: o.URL, Audiences: []string{"hotsock"}, ClockSkew: time.Minute, Now: c.Now})
	good := key.Sign(claimsFor(c, o.URL, nil))
	parts := strings.Split(good, ".")
	hdr, pay := mustB64(parts[0]), mustB64(parts[1])
	f.Add(good, hdr, pay)
	f.Add(parts[0]+"."+parts[1]+".", []byte(`{"alg":"none","kid":"k1"}`), pay)
	f.Add("a.b.c", []byte(`{"alg":"ES256","kid":"k1","crit":["x"]}`), []byte(`{"aud":["hotsock"],"exp":1e10,"iss":"`+o.URL+`"}`))
	f.Add("..", []byte(`{"alg":"ES256","kid":"k1","alg":"ES256"}`), []byte(`{"aud":"hotsock","aud":"x"}`))
	f.Add(strings.Repeat("A", 100), []byte(`{"alg":"ES256","kid":"k1","jku":"https://evil.example.com"}`), []byte(`{"aud":"hotsock","exp":"1e10","nbf":99999999999}`))
	f.Add(good+"=", []byte(`{"alg":"ES256","kid":"unknown"}`), []byte(`{"aud":"hotsock","exp":99999999999,"iss":"`+o.URL+`","scope":"a b"}`))
	f.Add("e30.e30.e30", []byte(`{"alg":"RS256","kid":"k1"}`), []byte(`{}`))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := v.Refresh(ctx); err != nil {
		f.Fatal(err)
	}
	pub := key.Signer.Public()
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("hotsock"), jwt.WithIssuer(o.URL),
		jwt.WithExpirationRequired(), jwt.WithLeeway(time.Minute), jwt.WithTimeFunc(c.Now))
	keyfunc := func(*jwt.Token) (any, error) { return pub, nil }

	check := func(t *testing.T, token string, payload []byte) {
		tok, err := v.Verify(t.Context(), token)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason < ReasonMalformed || e.Reason > ReasonKeySetUnavailable || tok != nil {
				t.Fatalf("%q: %v", token, err)
			}
			if e.Reason == ReasonKeySetUnavailable {
				t.Fatalf("%q: %v", token, err)
			}
			return
		}
		if _, err := parser.Parse(token, keyfunc); err != nil {
			t.Fatalf("accepted %q, which golang-jwt refuses: %v", token, err)
		}
		var claims map[string]any
		if payload != nil {
			if err := json.Unmarshal(payload, &claims); err != nil {
				t.Fatalf("accepted claims %q that encoding/json refuses: %v", payload, err)
			}
			exp, _ := claims["exp"].(float64)
			if claims["iss"] != o.URL || exp == 0 || !tok.Expiry.Equal(numericTime(exp)) {
				t.Fatalf("claims %q read as %+v", payload, tok)
			}
			if aud, ok := claims["aud"].(string); ok && aud != "hotsock" || !slices.Contains(tok.Audience, "hotsock") {
				t.Fatalf("claims %q: audience %v", payload, tok.Audience)
			}
		}
	}
	f.Fuzz(func(t *testing.T, token string, header, payload []byte) {
		check(t, token, nil)
		signed := key.SignRaw(string(header), string(payload))
		check(t, signed, payload)
	})
}
