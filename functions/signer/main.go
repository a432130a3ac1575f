// Command signer is the token-issuing Lambda function.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"jwks-issuer/pkg/envconfig"
	"jwks-issuer/pkg/kmscustody"
	"jwks-issuer/pkg/lambdainit"
	"jwks-issuer/pkg/metrics"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/token"
)

func main() {
	log := lambdainit.NewLogger()
	cfg, err := envconfig.LoadSigner(os.Getenv)
	if err != nil {
		lambdainit.Fail(log, "invalid configuration", err)
	}
	awsCfg, err := awsstore.LoadConfig(context.Background(), log)
	if err != nil {
		lambdainit.Fail(log, "load AWS configuration", err)
	}
	var load func(context.Context) (*token.Key, error)
	switch cfg.Custody {
	case envconfig.CustodyParameterStore: // no Secrets Manager call at all
		load = token.ParameterKeyLoader(awsstore.NewParameter(awsstore.NewSSMClient(awsCfg), cfg.Parameter), nil)
	case envconfig.CustodyKMS:
		secret := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(awsCfg), cfg.SecretID)
		load = token.SecretKeyLoader(secret, kmscustody.SignerFunc(awsstore.NewKMS(awsstore.NewKMSClient(awsCfg))))
	default:
		secret := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(awsCfg), cfg.SecretID)
		load = token.SecretKeyLoader(secret, nil)
	}
	cache := token.NewKeyCache(load, cfg.KeyCache, time.Now, log)
	// EMF records on the log's stdout: the metrics cost no API call.
	meter := token.NewSignerMetrics(metrics.New(os.Stdout, time.Now), cfg.SecretID)
	meter.ObserveKeys(cache)
	rules := []token.Option{token.WithIssuer(cfg.Issuer.String()), token.WithAllowedAudiences(cfg.Audiences),
		token.WithMaxClaimsBytes(cfg.MaxClaimsBytes)}
	if cfg.Custody == envconfig.CustodyKMS { // every token a kms:Sign call
		rules = append(rules, token.WithKMSBatchLimit(cfg.MaxBatchKMS))
	}
	lambda.Start(meter.Wrap(token.NewIssuer(cache, cfg.MaxTokenTTL, time.Now, rules...)))
}
