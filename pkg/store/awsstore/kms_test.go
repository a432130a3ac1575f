package awsstore_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"jwks-issuer/internal/testenv"
	"jwks-issuer/pkg/kmscustody"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/store/storetest"
)

// kmsTestConfig is an SDK configuration for moto that reads nothing from
// the environment or shared files.
func kmsTestConfig(t *testing.T, m *testenv.Moto) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithBaseEndpoint(m.Endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// One moto for the whole contract: every case tags its keys with a value of
// its own, so they do not see each other's keys.
func TestKMSContract(t *testing.T) {
	api := awsstore.NewKMS(awsstore.NewKMSClient(kmsTestConfig(t, testenv.StartMoto(t))))
	storetest.RunKMS(t, func(*testing.T) kmscustody.API { return api })
}
