package memstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"jwks-issuer/pkg/store"
)

// defaultContentType is what S3 records for a put without a Content-Type.
const defaultContentType = "binary/octet-stream"

// Object is an in-memory S3 object. The zero value is not usable; call
// NewObject.
type Object struct {
	hooked

	mu  sync.Mutex
	obj *store.Object // nil while the object does not exist
}

var _ store.Objects = (*Object)(nil)

// NewObject returns an object that does not exist yet.
func NewObject() *Object { return &Object{} }

// Get returns a copy of the object, or store.ErrNotFound.
func (o *Object) Get(ctx context.Context) (store.Object, error) {
	if err := o.runHook(OpGet); err != nil {
		return store.Object{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.obj == nil {
		return store.Object{}, fmt.Errorf("get object: %w", store.ErrNotFound)
	}
	obj := *o.obj
	obj.Body = bytes.Clone(obj.Body)
	return obj, nil
}

// Put writes the object if cond holds and returns its ETag: the quoted MD5
// of the body, as S3 gives for a single-part unencrypted upload.
func (o *Object) Put(ctx context.Context, body []byte, contentType, cacheControl string, cond store.PutCondition) (string, error) {
	if err := o.runHook(OpPut); err != nil {
		return "", err
	}
	if cond.IfMatch != "" && cond.IfNoneMatch {
		return "", fmt.Errorf("put object: If-Match and If-None-Match together")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case cond.IfNoneMatch && o.obj != nil:
		return "", fmt.Errorf("put object: it exists: %w", store.ErrPrecondition)
	case cond.IfMatch != "" && o.obj == nil:
		return "", fmt.Errorf("put object: it does not exist: %w", store.ErrPrecondition)
	case cond.IfMatch != "" && unquote(cond.IfMatch) != unquote(o.obj.ETag):
		return "", fmt.Errorf("put object: ETag is %s, not %s: %w", o.obj.ETag, cond.IfMatch, store.ErrPrecondition)
	}
	if contentType == "" {
		contentType = defaultContentType
	}
	sum := md5.Sum(body)
	o.obj = &store.Object{
		Body:         bytes.Clone(body),
		ETag:         `"` + hex.EncodeToString(sum[:]) + `"`,
		ContentType:  contentType,
		CacheControl: cacheControl,
	}
	return o.obj.ETag, nil
}

// unquote lets an ETag match with or without its quotes, as S3's If-Match does.
func unquote(etag string) string { return strings.Trim(etag, `"`) }
