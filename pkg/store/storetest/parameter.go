package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"jwks-issuer/pkg/store"
)

// RunParameter runs the parameter contract. newStore must return a
// parameter that does not exist yet. Subtests run in parallel, each with a
// parameter of its own.
func RunParameter(t *testing.T, newStore func(t *testing.T) store.Parameter) {
	ctx := context.Background()
	fresh := func(t *testing.T) store.Parameter {
		t.Helper()
		t.Parallel()
		return newStore(t)
	}
	t.Run("absent parameter is not found", func(t *testing.T) {
		p := fresh(t)
		if _, err := p.Get(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of an absent parameter: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("put then get, overwrite, bytes kept exactly", func(t *testing.T) {
		p := fresh(t)
		for _, v := range []string{`{"kid":"a"}`, "{\"privateKeyPem\":\"-----BEGIN-----\\nAB\\n\"}\n", `{"kid":"b"}`} {
			if err := p.Put(ctx, []byte(v)); err != nil {
				t.Fatalf("Put(%q): %v", v, err)
			}
			got, err := p.Get(ctx)
			if err != nil || string(got) != v {
				t.Fatalf("Get = %q, %v; want %q", got, err, v)
			}
		}
	})
	t.Run("a value over the standard tier's 4 KB is refused and changes nothing", func(t *testing.T) {
		p := fresh(t)
		if err := p.Put(ctx, []byte("kept")); err != nil {
			t.Fatal(err)
		}
		err := p.Put(ctx, []byte(strings.Repeat("a", store.MaxParameterValue+1)))
		if err == nil || !strings.Contains(err.Error(), "the limit is 4096") {
			t.Fatalf("Put of 4097 bytes: %v, want a refusal naming the limit", err)
		}
		if got, _ := p.Get(ctx); string(got) != "kept" {
			t.Fatalf("after the refusal the value is %q", got)
		}
		if err := p.Put(ctx, []byte(strings.Repeat("a", store.MaxParameterValue))); err != nil {
			t.Fatalf("Put of exactly 4096 bytes: %v", err)
		}
	})
}
