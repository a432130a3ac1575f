// Command plainsigner is the baseline `make bench` measures the signer's
// cold start against: a plain Lambda JWT signer written the common way, as
// the hotsock jwt-issuer is. config.LoadDefaultConfig, a Secrets Manager
// client, one GetSecretValue of the key secret's AWSCURRENT version during
// init, the PEM parsed with golang-jwt, and each request decoded with
// encoding/json into jwt.MapClaims and signed with golang-jwt. It reads the
// same secret as the signer (SECRET_ID) and answers the same request with
// {"token":"..."}; it has no key cache, no rotation, no limits.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"
)

type input struct {
	Claims jwt.MapClaims `json:"claims"`
	TTL    int64         `json:"ttl"`
	SetIat bool          `json:"setIat"`
	SetJti bool          `json:"setJti"`
}

type output struct {
	Token string `json:"token"`
}

var (
	method jwt.SigningMethod
	kid    string
	key    any
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.TODO(), config.WithRegion(os.Getenv("AWS_REGION")))
	if err != nil {
		panic(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	out, err := sm.GetSecretValue(context.TODO(), &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(os.Getenv("SECRET_ID")),
		VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		panic(err)
	}
	var rec struct {
		PrivateKeyPem string `json:"privateKeyPem"`
		Kid           string `json:"kid"`
		Alg           string `json:"alg"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &rec); err != nil {
		panic(err)
	}
	kid, method = rec.Kid, jwt.GetSigningMethod(rec.Alg)
	switch rec.Alg {
	case "RS256":
		key, err = jwt.ParseRSAPrivateKeyFromPEM([]byte(rec.PrivateKeyPem))
	default:
		key, err = jwt.ParseECPrivateKeyFromPEM([]byte(rec.PrivateKeyPem))
	}
	if err != nil {
		panic(err)
	}
	lambda.Start(handler)
}

func handler(_ context.Context, in input) (output, error) {
	if in.Claims == nil {
		in.Claims = jwt.MapClaims{}
	}
	now := time.Now().Unix()
	if in.TTL > 0 {
		in.Claims["exp"] = now + in.TTL
	}
	if in.SetIat {
		in.Claims["iat"] = now
	}
	if in.SetJti {
		var u [16]byte
		if _, err := rand.Read(u[:]); err != nil {
			return output{}, err
		}
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		h := hex.EncodeToString(u[:])
		in.Claims["jti"] = fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:])
	}
	t := jwt.NewWithClaims(method, in.Claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return output{}, err
	}
	return output{Token: s}, nil
}
