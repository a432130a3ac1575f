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
	secret := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(awsCfg), cfg.SecretID)
	var kms token.KMSSignerFunc // nil: keys in the secret
	if cfg.Custody == envconfig.CustodyKMS {
		kms = kmscustody.SignerFunc(awsstore.NewKMS(awsstore.NewKMSClient(awsCfg)))
	}
	cache := token.NewKeyCache(token.SecretKeyLoader(secret, kms), cfg.KeyCache, time.Now, log)
	lambda.Start(token.NewIssuer(cache, cfg.MaxTokenTTL, time.Now))
}
