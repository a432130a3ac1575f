// Package awserr classifies AWS SDK errors for the store adapters.
package awserr

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Code is the AWS error code of err ("NoSuchKey", "PreconditionFailed"),
// or "" if err is not an API error.
func Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// HTTPStatus is the HTTP status of the response that produced err, or 0.
// S3 answers some errors (such as a HEAD-style 404) without a body, so the
// status is sometimes all there is to classify them by.
func HTTPStatus(err error) int {
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.Response != nil {
		return respErr.HTTPStatusCode()
	}
	return 0
}

// As wraps err so that errors.Is(result, sentinel) holds while the AWS error
// (request id, message) stays in the chain for logs.
func As(sentinel, err error) error {
	return fmt.Errorf("%w: %w", sentinel, err)
}
