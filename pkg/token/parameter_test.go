package token

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
	"jwks-issuer/pkg/store/memstore"
)

func TestParameterKeyLoader(t *testing.T) {
	rec, err := keys.NewRecord(keys.ES256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kmsRec := rec
	kmsRec.PrivateKeyPem, kmsRec.KMSKeyID = "", "arn:aws:kms:us-east-1:123456789012:key/k"
	tests := []struct {
		name  string
		value []byte // nil: absent
		kid   string
		err   string
		is    error
	}{
		{"absent: not written yet", nil, "", "no signing key yet: the signing-key parameter does not exist", ErrNoParameter},
		{"the record's key", rec.SigningOnly().Marshal(), rec.Kid, "", nil},
		{"not a key record", []byte(`{}`), "", "not a key record", nil},
		{"a KMS record without a KMS client", kmsRec.Marshal(), "", "KEY_CUSTODY=kms", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := memstore.NewParameter()
			if tt.value != nil {
				if err := p.Put(context.Background(), tt.value); err != nil {
					t.Fatal(err)
				}
			}
			key, err := ParameterKeyLoader(p, nil)(context.Background())
			if tt.err == "" {
				if err != nil || key.Kid != tt.kid {
					t.Fatalf("load = %v, %v; want kid %s", key, err, tt.kid)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("load error = %v, want %q", err, tt.err)
			}
		})
	}
}
