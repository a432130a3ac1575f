// Package awslite makes the signer's AWS calls: Secrets Manager's
// GetSecretValue, Parameter Store's GetParameter and KMS's Sign. They are
// AWS JSON 1.1 requests, signed with the SDK's SigV4 signer and retried by
// the SDK's standard retryer, with the configuration read from the
// environment Lambda gives a function.
//
// The signer does not link aws-sdk-go-v2's service clients or its config
// package: their package initialisers, and the shared-config, SSO, STS and
// instance-metadata machinery config brings along, were most of the
// signer's cold start and of its binary (docs/performance.md). The rotator
// and the operator command keep the SDK's clients and its full
// configuration.
package awslite

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Config is what the calls need from the environment.
type Config struct {
	// Region is AWS_REGION (else AWS_DEFAULT_REGION).
	Region string
	// Credentials are the execution role's, which Lambda puts in
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
	Credentials aws.Credentials
	// FIPS and DualStack choose the service endpoints' variants
	// (AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT).
	FIPS, DualStack bool
	// MaxAttempts is AWS_MAX_ATTEMPTS (0: the SDK's default, 3).
	MaxAttempts int
	// RetryMode is AWS_RETRY_MODE (empty: standard).
	RetryMode aws.RetryMode
	// HTTPClient sends the requests; nil: the SDK's default client.
	HTTPClient aws.HTTPClient

	// getenv finds the configured endpoints (AWS_ENDPOINT_URL and
	// AWS_ENDPOINT_URL_<SERVICE>) when a client is made.
	getenv func(string) string
	// ignoreEndpoints is AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
	ignoreEndpoints bool
}

// FromEnvironment reads the configuration from the variables Lambda sets,
// and the few a deployment or a test may add: AWS_ENDPOINT_URL,
// AWS_ENDPOINT_URL_<SERVICE> (unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is
// true), AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT, AWS_MAX_ATTEMPTS
// and AWS_RETRY_MODE. It reads no file and asks no credential provider: no
// shared config or credentials file, no profile, no SSO, no web identity, no
// container or instance-metadata credentials, no AWS_CA_BUNDLE. A missing
// Region or missing credentials fail, naming the variables.
func FromEnvironment(getenv func(string) string) (Config, error) {
	first := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				return v
			}
		}
		return ""
	}
	cfg := Config{getenv: getenv, Region: first("AWS_REGION", "AWS_DEFAULT_REGION")}
	if cfg.Region == "" {
		return Config{}, fmt.Errorf("AWS_REGION is not set (Lambda sets it; a local run must)")
	}
	cfg.Credentials = aws.Credentials{
		AccessKeyID:     first("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"),
		SecretAccessKey: first("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"),
		SessionToken:    first("AWS_SESSION_TOKEN"),
		Source:          "environment",
	}
	if cfg.Credentials.AccessKeyID == "" || cfg.Credentials.SecretAccessKey == "" {
		return Config{}, fmt.Errorf("no AWS credentials in the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY " +
			"are not set (Lambda sets them and AWS_SESSION_TOKEN from the execution role; the signer reads no " +
			"shared config or credentials file, profile, SSO, web identity, container or instance credentials)")
	}
	var err error
	flag := func(name string) bool {
		switch v := strings.ToLower(strings.TrimSpace(getenv(name))); v {
		case "", "false":
			return false
		case "true":
			return true
		default:
			if err == nil {
				err = fmt.Errorf("%s is %q, must be true or false", name, getenv(name))
			}
			return false
		}
	}
	cfg.FIPS = flag("AWS_USE_FIPS_ENDPOINT")
	cfg.DualStack = flag("AWS_USE_DUALSTACK_ENDPOINT")
	cfg.ignoreEndpoints = flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
	if err != nil {
		return Config{}, err
	}
	if v := first("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("AWS_MAX_ATTEMPTS is %q, must be a whole number of at least 1", v)
		}
		cfg.MaxAttempts = n
	}
	if v := first("AWS_RETRY_MODE"); v != "" {
		mode, err := aws.ParseRetryMode(v)
		if err != nil {
			return Config{}, fmt.Errorf("AWS_RETRY_MODE is %q, must be standard or adaptive", v)
		}
		cfg.RetryMode = mode
	}
	return cfg, nil
}

// configuredEndpoint is the endpoint set for svc in the environment, if
// any: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, as the SDK reads
// them.
func (c Config) configuredEndpoint(svc Service) string {
	if c.getenv == nil || c.ignoreEndpoints {
		return ""
	}
	if v := strings.TrimSpace(c.getenv("AWS_ENDPOINT_URL_" + svc.envID)); v != "" {
		return v
	}
	return strings.TrimSpace(c.getenv("AWS_ENDPOINT_URL"))
}

// WithEndpoints makes c find configured endpoints with getenv (tests and
// callers that build a Config by hand).
func (c Config) WithEndpoints(getenv func(string) string) Config {
	c.getenv = getenv
	return c
}
