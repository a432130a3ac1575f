package storetest

import (
	"context"
	"errors"
	"testing"

	"jwks-issuer/pkg/store"
)

// RunObjects runs the object contract. newObject must return an object
// that does not exist yet. Subtests run in parallel, each with its own.
func RunObjects(t *testing.T, newObject func(t *testing.T) store.Objects) {
	ctx := context.Background()
	fresh := func(t *testing.T) store.Objects {
		t.Helper()
		t.Parallel()
		return newObject(t)
	}
	// seed writes a first version unconditionally and returns its ETag.
	seed := func(t *testing.T, o store.Objects) string {
		t.Helper()
		etag, err := o.Put(ctx, []byte(`{"v":1}`), "application/json", "max-age=1", store.PutCondition{})
		if err != nil {
			t.Fatalf("seed Put: %v", err)
		}
		return etag
	}

	t.Run("get of a missing object is ErrNotFound", func(t *testing.T) {
		o := fresh(t)
		if _, err := o.Get(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("put round-trips body, ETag, Content-Type and Cache-Control", func(t *testing.T) {
		o := fresh(t)
		etag, err := o.Put(ctx, []byte(`{"keys":[]}`), "application/json", "public, max-age=300", store.PutCondition{})
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		wantObject(t, o, store.Object{
			Body:         []byte(`{"keys":[]}`),
			ETag:         etag,
			ContentType:  "application/json",
			CacheControl: "public, max-age=300",
		})
	})

	t.Run("unconditional put overwrites", func(t *testing.T) {
		o := fresh(t)
		old := seed(t, o)
		etag, err := o.Put(ctx, []byte(`{"v":2}`), "application/json", "max-age=2", store.PutCondition{})
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if etag == old {
			t.Errorf("ETag %s did not change with the content", etag)
		}
		wantObject(t, o, store.Object{Body: []byte(`{"v":2}`), ETag: etag, ContentType: "application/json", CacheControl: "max-age=2"})
	})

	// Each case writes {"v":2} under a condition, onto a missing or seeded
	// object; cond gets the seeded ETag ("" when there is none).
	for _, c := range []struct {
		name    string
		exists  bool
		cond    func(etag string) store.PutCondition
		wantErr error
	}{
		{"If-None-Match on a missing object succeeds", false,
			func(string) store.PutCondition { return store.PutCondition{IfNoneMatch: true} }, nil},
		{"If-None-Match on an existing object is ErrPrecondition", true,
			func(string) store.PutCondition { return store.PutCondition{IfNoneMatch: true} }, store.ErrPrecondition},
		{"If-Match with the current ETag succeeds", true,
			func(etag string) store.PutCondition { return store.PutCondition{IfMatch: etag} }, nil},
		{"If-Match with a stale ETag is ErrPrecondition", true,
			func(string) store.PutCondition { return store.PutCondition{IfMatch: staleETag} }, store.ErrPrecondition},
		{"If-Match on a missing object is ErrPrecondition", false,
			func(string) store.PutCondition { return store.PutCondition{IfMatch: staleETag} }, store.ErrPrecondition},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := fresh(t)
			var before string
			if c.exists {
				before = seed(t, o)
			}
			etag, err := o.Put(ctx, []byte(`{"v":2}`), "application/json", "max-age=2", c.cond(before))
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Put: err = %v, want %v", err, c.wantErr)
				}
				// A refused write leaves what was there.
				if c.exists {
					wantObject(t, o, store.Object{Body: []byte(`{"v":1}`), ETag: before, ContentType: "application/json", CacheControl: "max-age=1"})
				} else if _, err := o.Get(ctx); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Get after refused put: err = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if etag == "" || etag == before {
				t.Errorf("Put returned ETag %q, want a new one (was %q)", etag, before)
			}
			wantObject(t, o, store.Object{Body: []byte(`{"v":2}`), ETag: etag, ContentType: "application/json", CacheControl: "max-age=2"})
		})
	}

	t.Run("If-Match and If-None-Match together are refused", func(t *testing.T) {
		o := fresh(t)
		etag := seed(t, o)
		if _, err := o.Put(ctx, []byte("x"), "text/plain", "", store.PutCondition{IfMatch: etag, IfNoneMatch: true}); err == nil {
			t.Fatal("Put: err = nil, want an error")
		}
	})
}

// staleETag is a well-formed ETag that no object in the suite has.
const staleETag = `"0123456789abcdef0123456789abcdef"`

func wantObject(t *testing.T, o store.Objects, want store.Object) {
	t.Helper()
	got, err := o.Get(context.Background())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(got.Body) != string(want.Body) || got.ETag != want.ETag ||
		got.ContentType != want.ContentType || got.CacheControl != want.CacheControl {
		t.Errorf("Get = {%q %s %q %q}, want {%q %s %q %q}",
			got.Body, got.ETag, got.ContentType, got.CacheControl,
			want.Body, want.ETag, want.ContentType, want.CacheControl)
	}
}
