// Command signer is the token-issuing Lambda function.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"jwks-issuer/pkg/envconfig"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/token"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := envconfig.LoadSigner(os.Getenv)
	if err != nil {
		log.Error("invalid configuration", "error", err.Error())
		os.Exit(1)
	}
	awsCfg, err := awsstore.LoadConfig(context.Background())
	if err != nil {
		log.Error("load AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	secret := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(awsCfg), cfg.SecretID)
	cache := token.NewKeyCache(token.SecretKeyLoader(secret, nil), cfg.KeyCache, time.Now, log)
	lambda.Start(token.NewIssuer(cache, cfg.MaxTokenTTL, time.Now))
}
