// Command signer is the token-issuing Lambda function.
package main

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"jwks-issuer/pkg/envconfig"
	"jwks-issuer/pkg/kmscustody"
	"jwks-issuer/pkg/lambdainit"
	"jwks-issuer/pkg/metrics"
	"jwks-issuer/pkg/store/awslite"
	"jwks-issuer/pkg/token"
)

func main() {
	log := lambdainit.NewLogger()
	cfg, err := envconfig.LoadSigner(os.Getenv)
	if err != nil {
		lambdainit.Fail(log, "invalid configuration", err)
	}
	// The AWS configuration is the Lambda environment's alone (awslite).
	awsCfg, err := awslite.FromEnvironment(os.Getenv)
	if err != nil {
		lambdainit.Fail(log, "load AWS configuration", err)
	}
	load, err := keyLoader(cfg, awsCfg)
	if err != nil {
		lambdainit.Fail(log, "load AWS configuration", err)
	}
	cache := token.NewKeyCache(load, cfg.KeyCache, time.Now, log)
	// EMF records on the log's stdout: the metrics cost no API call.
	meter := token.NewSignerMetrics(metrics.New(os.Stdout, time.Now), cfg.SecretID)
	meter.ObserveKeys(cache)
	readKeyDuringInit(cache, cfg.KeyCache, log)
	rules := []token.Option{token.WithIssuer(cfg.Issuer.String()), token.WithAllowedAudiences(cfg.Audiences),
		token.WithMaxClaimsBytes(cfg.MaxClaimsBytes), token.WithLambdaMemory(memorySize())}
	if cfg.Custody == envconfig.CustodyKMS { // every token a kms:Sign call
		rules = append(rules, token.WithKMSBatchLimit(cfg.MaxBatchKMS))
	}
	lambda.Start(meter.Wrap(token.NewIssuer(cache, cfg.MaxTokenTTL, time.Now, rules...)))
}

// keyLoader reads the signing key where the custody keeps it, with clients
// of the services that custody calls and no others: Parameter Store's
// alone, Secrets Manager's, or Secrets Manager's and KMS's.
func keyLoader(cfg envconfig.Signer, aws awslite.Config) (func(context.Context) (*token.Key, error), error) {
	if cfg.Custody == envconfig.CustodyParameterStore { // no Secrets Manager call at all
		ssm, err := awslite.New(aws, awslite.ServiceSSM)
		if err != nil {
			return nil, err
		}
		return token.ParameterKeyLoader(awslite.NewParameter(ssm, cfg.Parameter), nil), nil
	}
	sm, err := awslite.New(aws, awslite.ServiceSecretsManager)
	if err != nil {
		return nil, err
	}
	secret := awslite.NewSecret(sm, cfg.SecretID)
	if cfg.Custody != envconfig.CustodyKMS {
		return token.SecretKeyLoader(secret, nil), nil
	}
	kms, err := awslite.New(aws, awslite.ServiceKMS)
	if err != nil {
		return nil, err
	}
	return token.SecretKeyLoader(secret, kmscustody.SignerFunc(awslite.NewKMS(kms))), nil
}

// initKeyReadTimeout bounds the key read of init, well inside Lambda's 10 s
// for the init phase.
const initKeyReadTimeout = 3 * time.Second

// readKeyDuringInit fills the key cache before the first invocation, which
// then signs without a round trip: on a cold start the read happens in the
// init phase instead of the first invocation, and an environment Lambda
// initialises ahead of its first invocation has the key when it comes. The
// read finishes before lambda.Start, so no request is in flight when
// Lambda freezes an initialised environment. A failed read fails nothing:
// it is logged, and the first invocation reads again (the cache keeps
// nothing from a failed read). With KEY_CACHE_SECONDS=0 every invocation
// reads the key anyway, and init does not.
func readKeyDuringInit(cache *token.KeyCache, maxAge time.Duration, log *slog.Logger) {
	if maxAge <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), initKeyReadTimeout)
	defer cancel()
	if _, err := cache.Key(ctx); err != nil {
		log.Warn("signing key not read during init; the first invocation reads it", "error", err.Error())
	}
}

// memorySize is the function's memory in MB, which Lambda sets in
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE; 0 when it is not set.
func memorySize() int {
	mb, _ := strconv.Atoi(os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
	return mb
}
