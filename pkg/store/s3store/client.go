// Package s3store implements store.Objects over S3 with aws-sdk-go-v2. It
// is apart from awsstore so that the signer, which never touches S3, does
// not link the S3 client.
package s3store

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// NewClient returns an S3 client for cfg. With a custom endpoint it uses
// path-style addressing: an emulator such as moto_server cannot serve
// virtual-hosted bucket names under its own host name. Against AWS itself
// the SDK's default (virtual-hosted) is kept.
//
// The client does not log "Response has no supported checksum" for a
// GetObject answer without a checksum it can check (moto's never carry one,
// and S3's need not): the rotator compares the key set it reads byte for
// byte with the one it would write, and rewrites it on any difference, so
// the entry says nothing to act on, and would come with every rotation.
func NewClient(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.DisableLogOutputChecksumValidationSkipped = true
		if hasCustomEndpoint(cfg) {
			o.UsePathStyle = true
		}
	})
}

func hasCustomEndpoint(cfg aws.Config) bool {
	return cfg.BaseEndpoint != nil ||
		os.Getenv("AWS_ENDPOINT_URL") != "" ||
		os.Getenv("AWS_ENDPOINT_URL_S3") != ""
}
