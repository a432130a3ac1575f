package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func FuzzParseRecord(f *testing.F) {
	rec, _ := NewRecord(ES256, time.Unix(0, 0))
	f.Add(rec.Marshal())
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"kid":""}`))
	f.Add([]byte(`{"kid":"a","alg":"ES256","kmsKeyArn":"arn","publicKeyJwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		r, err := ParseRecord(value)
		if err != nil {
			if errors.Is(err, ErrNotRecord) {
				return
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error quotes key material: %v", err)
			}
			return
		}
		// An accepted record round-trips and publishes no private member.
		again, err := ParseRecord(r.Marshal())
		if err != nil {
			t.Fatalf("accepted record does not parse after marshal: %v", err)
		}
		if again.Kid != r.Kid || again.PublicKeyJwk != r.PublicKeyJwk {
			t.Fatal("round trip changed the record")
		}
		if set := MarshalSet([]JWK{r.Public()}); bytes.Contains(set, []byte(`"d"`)) {
			t.Fatalf("private member in the published set: %s", set)
		}
	})
}

func FuzzParseSet(f *testing.F) {
	a, _ := NewRecord(ES256, time.Unix(0, 0))
	f.Add(MarshalSet([]JWK{a.Public()}))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"k"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		set, err := ParseSet(body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parse jwks") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		// What parses re-encodes to a set that parses to the same keys.
		again, err := ParseSet(MarshalSet(set.Keys))
		if err != nil || len(again.Keys) != len(set.Keys) {
			t.Fatalf("accepted set does not survive a round trip: %v", err)
		}
		for i := range set.Keys {
			if again.Keys[i] != set.Keys[i] {
				t.Fatalf("key %d changed in a round trip", i)
			}
			var m map[string]any
			_ = json.Unmarshal(MarshalSet(set.Keys[i:i+1]), &m)
		}
	})
}
