package s3store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/internal/awserr"
)

// Object is one S3 object.
type Object struct {
	client *s3.Client
	bucket string
	key    string
}

var _ store.Objects = (*Object)(nil)

// NewObject returns the object key in bucket reached through client.
func NewObject(client *s3.Client, bucket, key string) *Object {
	return &Object{client: client, bucket: bucket, key: key}
}

// Get returns the object, or store.ErrNotFound.
func (o *Object) Get(ctx context.Context) (store.Object, error) {
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: &o.key})
	if err != nil {
		if isMissingKey(err) {
			err = awserr.As(store.ErrNotFound, err)
		}
		return store.Object{}, fmt.Errorf("get s3://%s/%s: %w", o.bucket, o.key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return store.Object{}, fmt.Errorf("read s3://%s/%s: %w", o.bucket, o.key, err)
	}
	return store.Object{
		Body:         body,
		ETag:         aws.ToString(out.ETag),
		ContentType:  aws.ToString(out.ContentType),
		CacheControl: aws.ToString(out.CacheControl),
	}, nil
}

// Put writes the object if cond holds and returns its new ETag. A lost
// race, in any of the shapes S3 reports it, is store.ErrPrecondition.
func (o *Object) Put(ctx context.Context, body []byte, contentType, cacheControl string, cond store.PutCondition) (string, error) {
	if cond.IfMatch != "" && cond.IfNoneMatch {
		return "", fmt.Errorf("put s3://%s/%s: If-Match and If-None-Match together", o.bucket, o.key)
	}
	in := &s3.PutObjectInput{
		Bucket:       &o.bucket,
		Key:          &o.key,
		Body:         bytes.NewReader(body),
		ContentType:  nonEmpty(contentType),
		CacheControl: nonEmpty(cacheControl),
	}
	if cond.IfMatch != "" {
		in.IfMatch = &cond.IfMatch
	}
	if cond.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := o.client.PutObject(ctx, in)
	if err != nil {
		if lostRace(err, cond) {
			err = awserr.As(store.ErrPrecondition, err)
		}
		return "", fmt.Errorf("put s3://%s/%s: %w", o.bucket, o.key, err)
	}
	return aws.ToString(out.ETag), nil
}

// isMissingKey reports whether err says the key does not exist. A missing
// bucket is a configuration error, not an absent object, so it is kept apart.
func isMissingKey(err error) bool {
	switch awserr.Code(err) {
	case "NoSuchKey":
		return true
	case "NoSuchBucket":
		return false
	}
	return awserr.HTTPStatus(err) == http.StatusNotFound
}

// lostRace reports whether a conditional put failed because its condition
// no longer holds: 412 PreconditionFailed; 409 ConditionalRequestConflict
// (a concurrent write to the same key was in flight); or, for If-Match, a
// 404 because the object it was matched against has since gone.
func lostRace(err error, cond store.PutCondition) bool {
	if cond == (store.PutCondition{}) {
		return false
	}
	switch awserr.HTTPStatus(err) {
	case http.StatusPreconditionFailed, http.StatusConflict:
		return true
	case http.StatusNotFound:
		return cond.IfMatch != "" && isMissingKey(err)
	}
	return awserr.Code(err) == "PreconditionFailed" || awserr.Code(err) == "ConditionalRequestConflict"
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
