package awsstore_test

import (
	"testing"

	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/store/storetest"
)

// One moto for the whole contract: every case tags its keys with a value of
// its own, so they do not see each other's keys.
func TestKMSContract(t *testing.T) {
	api := awsstore.NewKMS(awsstore.NewKMSClient(motoConfig(t)))
	storetest.RunKMS(t, func(*testing.T) store.KMS { return api })
}
