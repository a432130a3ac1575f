// Command authorizer is an API Gateway Lambda authorizer for the issuer's
// tokens: REST API TOKEN and REQUEST authorizers, and HTTP API authorizers
// (payload format 2.0, simple responses). See docs/verifying.md.
package main

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"jwks-issuer/pkg/authorizer"
	"jwks-issuer/pkg/lambdainit"
	"jwks-issuer/pkg/verify"
)

// prefetchTimeout bounds the key set fetch during init. A slow or failed
// fetch does not stop the function: the first token fetches again.
const prefetchTimeout = 3 * time.Second

func main() {
	log := lambdainit.NewLogger()
	settings, err := authorizer.Load(os.Getenv)
	if err != nil {
		lambdainit.Fail(log, "invalid configuration", err)
	}
	settings.Verify.HTTPClient = &http.Client{Timeout: verify.DefaultFetchTimeout}
	settings.Verify.Logger = log
	v, err := verify.New(settings.Verify)
	if err != nil {
		lambdainit.Fail(log, "invalid configuration", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), prefetchTimeout)
	if err := v.Refresh(ctx); err != nil {
		log.Warn("key set not fetched during init; the first token fetches it", "error", err.Error())
	}
	cancel()
	lambda.Start(authorizer.New(v, settings, log))
}
