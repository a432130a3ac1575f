package awslite_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
	"jwks-issuer/pkg/store"
	"jwks-issuer/pkg/store/awslite"
	"jwks-issuer/pkg/store/awsstore"
)

// The signer's own client against moto, beside the SDK-based adapters the
// rotator uses: the same answers for the same stored state, and the same
// sentinel errors for what is missing.
func TestAgainstMoto(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	env := map[string]string{}
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cfg, err := awslite.FromEnvironment(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	sdk := stack.Config(m)
	client := func(svc awslite.Service) *awslite.Client {
		c, err := awslite.New(cfg, svc)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("GetSecretValue", func(t *testing.T) {
		sm := secretsmanager.NewFromConfig(sdk)
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("lite-" + stack.NewToken()), SecretString: aws.String(`{"kid":"k1"}`)})
		if err != nil {
			t.Fatal(err)
		}
		lite := awslite.NewSecret(client(awslite.ServiceSecretsManager), aws.ToString(out.ARN))
		full := awsstore.NewSecrets(sm, aws.ToString(out.ARN))
		v1, b1, err1 := lite.GetStage(ctx, store.StageCurrent)
		v2, b2, err2 := full.GetStage(ctx, store.StageCurrent)
		if err1 != nil || err2 != nil || v1 != v2 || string(b1) != string(b2) || string(b1) != `{"kid":"k1"}` {
			t.Fatalf("lite %s %q %v, SDK %s %q %v", v1, b1, err1, v2, b2, err2)
		}
		if _, _, err := lite.GetStage(ctx, store.StagePending); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a stage no version has: %v, want ErrNotFound", err)
		}
		missing := awslite.NewSecret(client(awslite.ServiceSecretsManager), "no-such-"+stack.NewToken())
		if _, _, err := missing.GetStage(ctx, store.StageCurrent); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a missing secret: %v, want ErrNotFound", err)
		}
	})

	t.Run("GetParameter", func(t *testing.T) {
		name := "/jwks-issuer/lite-" + stack.NewToken() + "/signing-key"
		lite := awslite.NewParameter(client(awslite.ServiceSSM), name)
		if _, err := lite.Get(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a missing parameter: %v, want ErrNotFound", err)
		}
		const value = "{\"kid\":\"k1\",\"privateKeyPem\":\"-----BEGIN\\nAB\\n\"}\n"
		if err := awsstore.NewParameter(awsstore.NewSSMClient(sdk), name).Put(ctx, []byte(value)); err != nil {
			t.Fatal(err)
		}
		got, err := lite.Get(ctx)
		if err != nil || string(got) != value {
			t.Fatalf("Get = %q, %v; want %q decrypted", got, err, value)
		}
	})

	t.Run("Sign", func(t *testing.T) {
		km := kms.NewFromConfig(sdk)
		key, err := km.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(key.KeyMetadata.KeyId)
		msg := []byte("header.payload")
		sig, err := awslite.NewKMS(client(awslite.ServiceKMS)).Sign(ctx, store.SignRequest{KeyID: id, Message: msg, Algorithm: store.ECDSASHA256})
		if err != nil {
			t.Fatal(err)
		}
		pubOut, err := km.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x509.ParsePKIXPublicKey(pubOut.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatal("the signature KMS gave does not verify with the key's public half")
		}
		if _, err := awslite.NewKMS(client(awslite.ServiceKMS)).Sign(ctx, store.SignRequest{KeyID: "00000000-0000-0000-0000-000000000000",
			Message: msg, Algorithm: store.ECDSASHA256}); !errors.Is(err, store.ErrKeyNotFound) {
			t.Fatalf("a missing key: %v, want ErrKeyNotFound", err)
		}
	})
}
