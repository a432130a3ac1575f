// Command rotator is the Secrets Manager rotation function, also run on a
// schedule with {"action":"cleanup"}.
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
	"jwks-issuer/pkg/rotation"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/store/s3store"
)

// The rotator finds KeyJanitor and KeyChecker on its custody by type
// assertion, so a drifted method signature would fail silently (revoked KMS
// keys left enabled, keys promoted unchecked): these make it a build error.
// They live here, the one package that links both, rather than in
// kmscustody, whose import of rotation would link the rotator's code into
// the signer.
var (
	_ rotation.Custody    = (*kmscustody.Custody)(nil)
	_ rotation.KeyJanitor = (*kmscustody.Custody)(nil)
	_ rotation.KeyChecker = (*kmscustody.Custody)(nil)
)

func main() {
	log := lambdainit.NewLogger()
	cfg, err := envconfig.LoadRotator(os.Getenv)
	if err != nil {
		lambdainit.Fail(log, "invalid configuration", err)
	}
	awsCfg, err := awsstore.LoadConfig(context.Background(), log)
	if err != nil {
		lambdainit.Fail(log, "load AWS configuration", err)
	}
	secret := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(awsCfg), cfg.SecretID)
	s3 := s3store.NewClient(awsCfg)
	jwks := s3store.NewObject(s3, cfg.Bucket, cfg.Key)
	// EMF records on the log's stdout: the metrics cost no API call.
	opts := []rotation.Option{rotation.WithMetrics(metrics.New(os.Stdout, time.Now), cfg.SecretID)}
	if !cfg.Issuer.IsZero() {
		opts = append(opts, rotation.WithDiscovery(s3store.NewObject(s3, cfg.Bucket, cfg.DiscoveryKey), cfg.Issuer, cfg.JWKSURL))
	}
	if cfg.Custody == envconfig.CustodyParameterStore {
		opts = append(opts, rotation.WithParameter(awsstore.NewParameter(awsstore.NewSSMClient(awsCfg), cfg.Parameter)))
	}
	var custody rotation.Custody = rotation.LocalCustody{}
	var kms *awsstore.KMS
	if cfg.Custody == envconfig.CustodyKMS {
		kms = awsstore.NewKMS(awsstore.NewKMSClient(awsCfg))
		// The roles the keys' policy lets sign (set by the template).
		roles := kmscustody.WithRoles(cfg.SignerRoleARN, cfg.RotatorRoleARN)
		if custody, err = kmscustody.New(kms, cfg.StackTag, cfg.KMSDeletionWindow, time.Now, log,
			kmscustody.ForSecret(cfg.SecretID), roles); err != nil {
			lambdainit.Fail(log, "invalid configuration", err)
		}
	}
	switch a := cfg.Adopt; a.From {
	case "ssm":
		opts = append(opts, rotation.WithAdoption(rotation.AdoptParameter(
			awsstore.NewParameter(awsstore.NewSSMClient(awsCfg), a.Name), a.Setting, a.Kid)))
	case "kms": // envconfig allows it under KMS custody only
		opts = append(opts, rotation.WithAdoption(rotation.AdoptKMS(kms, a.Name, a.Setting, a.Kid)))
	}
	rotator, err := rotation.New(rotation.Config{
		Lifecycle: cfg.Lifecycle,
		Algorithm: cfg.Algorithm,
		SecretID:  cfg.SecretID,
	}, secret, jwks, custody, time.Now, log, opts...)
	if err != nil {
		lambdainit.Fail(log, "invalid configuration", err)
	}
	lambda.Start(rotator)
}
