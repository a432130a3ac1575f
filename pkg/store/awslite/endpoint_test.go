package awslite

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// env is a getenv over a map.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// The endpoints are the ones the SDK's own clients resolve, for every
// partition (a Region of each, its global pseudo-Region, an unknown one)
// and with FIPS and dual-stack on and off. (The tests link the service
// clients; the signer does not.)
func TestEndpointsAreTheSDKs(t *testing.T) {
	ctx := context.Background()
	sdk := map[string]func(region string, fips, dual bool) (string, error){
		"secretsmanager": func(region string, fips, dual bool) (string, error) {
			e, err := secretsmanager.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, secretsmanager.EndpointParameters{
				Region: aws.String(region), UseFIPS: aws.Bool(fips), UseDualStack: aws.Bool(dual)})
			return e.URI.String(), err
		},
		"ssm": func(region string, fips, dual bool) (string, error) {
			e, err := ssm.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, ssm.EndpointParameters{
				Region: aws.String(region), UseFIPS: aws.Bool(fips), UseDualStack: aws.Bool(dual)})
			return e.URI.String(), err
		},
		"kms": func(region string, fips, dual bool) (string, error) {
			e, err := kms.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, kms.EndpointParameters{
				Region: aws.String(region), UseFIPS: aws.Bool(fips), UseDualStack: aws.Bool(dual)})
			return e.URI.String(), err
		},
	}
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-7", "ca-west-1", "il-central-1", "mx-central-1",
		"us-gov-west-1", "us-gov-east-1", "cn-north-1", "cn-northwest-1", "eusc-de-east-1", "us-iso-east-1",
		"us-isob-east-1", "eu-isoe-west-1", "us-isof-south-1", "aws-global", "aws-cn-global", "aws-us-gov-global",
		"aws-iso-global", "xx-newregion-1", "us-gov-new-9", "cn-new-2", "local"}
	for _, svc := range []Service{ServiceSecretsManager, ServiceSSM, ServiceKMS} {
		for _, region := range regions {
			for _, v := range []struct{ fips, dual bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
				name := fmt.Sprintf("%s/%s/fips=%v/dualstack=%v", svc.name, region, v.fips, v.dual)
				want, wantErr := sdk[svc.name](region, v.fips, v.dual)
				got, err := Config{Region: region, FIPS: v.fips, DualStack: v.dual}.endpoint(svc)
				if wantErr != nil {
					if err == nil {
						t.Errorf("%s: %s, the SDK refuses it: %v", name, got, wantErr)
					}
					continue
				}
				if err != nil || got != want {
					t.Errorf("%s: %q, %v; the SDK resolves %q", name, got, err, want)
				}
			}
		}
	}
}

// A Region that cannot be a host label is refused, as the SDK refuses it.
func TestEndpointRefusesAnInvalidRegion(t *testing.T) {
	for _, region := range []string{"us-east-1.evil.example", "-us-east-1", "us_east_1/", strings.Repeat("a", 64)} {
		if got, err := (Config{Region: region}).endpoint(ServiceKMS); err == nil {
			t.Errorf("Region %q: endpoint %s", region, got)
		}
	}
}

// AWS_ENDPOINT_URL_<SERVICE> wins over AWS_ENDPOINT_URL, and
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS turns both off, as in the SDK.
func TestConfiguredEndpoints(t *testing.T) {
	for _, c := range []struct {
		name string
		vars map[string]string
		svc  Service
		want string
	}{
		{"AWS_ENDPOINT_URL", map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:5000/"}, ServiceSSM, "http://127.0.0.1:5000"},
		{"the service's own", map[string]string{"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://b:2"},
			ServiceSecretsManager, "http://b:2"},
		{"another service's", map[string]string{"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://b:2"},
			ServiceKMS, "http://a:1"},
		{"ignored", map[string]string{"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_KMS": "http://b:2",
			"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, ServiceKMS, "https://kms.eu-west-1.amazonaws.com"},
		{"none", nil, ServiceSSM, "https://ssm.eu-west-1.amazonaws.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}
			for k, v := range c.vars {
				vars[k] = v
			}
			cfg, err := FromEnvironment(env(vars))
			if err != nil {
				t.Fatal(err)
			}
			client, err := New(cfg, c.svc)
			if err != nil || client.Endpoint() != c.want {
				t.Fatalf("endpoint %v, %v; want %s", client, err, c.want)
			}
		})
	}
	cfg, err := FromEnvironment(env(map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a",
		"AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://a:1", "AWS_USE_FIPS_ENDPOINT": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, ServiceKMS); err == nil || !strings.Contains(err.Error(), "cannot be combined with AWS_USE_FIPS_ENDPOINT") {
		t.Fatalf("a configured endpoint with FIPS: %v", err)
	}
}
