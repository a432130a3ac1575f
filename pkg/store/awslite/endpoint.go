package awslite

import (
	"fmt"
	"strings"
)

// Service is one of the three services the signer calls.
type Service struct {
	// name is the SigV4 signing name and the endpoint's first label.
	name string
	// envID is the service's part of AWS_ENDPOINT_URL_<SERVICE>.
	envID string
	// target prefixes the operation in X-Amz-Target.
	target string
	// endpoint adjusts the standard endpoint rule where the service's own
	// rules depart from it.
	endpoint func(p partition, region string, fips, dualStack bool) (string, bool)
}

var (
	// ServiceSecretsManager is AWS Secrets Manager.
	ServiceSecretsManager = Service{name: "secretsmanager", envID: "SECRETS_MANAGER", target: "secretsmanager",
		endpoint: func(p partition, region string, fips, dualStack bool) (string, bool) {
			// Secrets Manager's dual-stack endpoints in the aws and
			// aws-us-gov partitions are its usual names, and in aws-cn
			// only the FIPS one is under the dual-stack suffix.
			if dualStack && (p.id == "aws" || p.id == "aws-us-gov" || p.id == "aws-cn" && !fips) {
				return host("secretsmanager", fips, region, p.dnsSuffix), true
			}
			return "", false
		}}
	// ServiceSSM is AWS Systems Manager (Parameter Store).
	ServiceSSM = Service{name: "ssm", envID: "SSM", target: "AmazonSSM",
		endpoint: func(p partition, region string, fips, dualStack bool) (string, bool) {
			// SSM in AWS GovCloud (US) is FIPS-validated under its usual name.
			if fips && !dualStack && p.id == "aws-us-gov" {
				return host("ssm", false, region, p.dnsSuffix), true
			}
			return "", false
		}}
	// ServiceKMS is AWS Key Management Service.
	ServiceKMS = Service{name: "kms", envID: "KMS", target: "TrentService"}
)

// partition is the part of the SDK's partition data endpoints depend on.
type partition struct {
	id string
	// prefixes are the Region patterns of the partition: a Region is
	// <prefix>-<word>-<number>, as ^(us|eu|...)\-\w+\-\d+$ says.
	prefixes                   []string
	dnsSuffix, dualStackSuffix string
}

// partitions are the SDK's (aws-sdk-go-v2's internal/endpoints/awsrulesfn
// partitions.json), in its order. A Region no pattern matches is in aws.
var partitions = []partition{
	{"aws", []string{"us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"}, "amazonaws.com", "api.aws"},
	{"aws-cn", []string{"cn"}, "amazonaws.com.cn", "api.amazonwebservices.com.cn"},
	{"aws-eusc", []string{"eusc-de"}, "amazonaws.eu", "api.amazonwebservices.eu"},
	{"aws-iso", []string{"us-iso"}, "c2s.ic.gov", "api.aws.ic.gov"},
	{"aws-iso-b", []string{"us-isob"}, "sc2s.sgov.gov", "api.aws.scloud"},
	{"aws-iso-e", []string{"eu-isoe"}, "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"},
	{"aws-iso-f", []string{"us-isof"}, "csp.hci.ic.gov", "api.aws.hci.ic.gov"},
	{"aws-us-gov", []string{"us-gov"}, "amazonaws.com", "api.aws"},
}

// matches reports whether region is <prefix>-<word>-<number> for one of
// p's prefixes (word: letters, digits and _; number: digits).
func (p partition) matches(region string) bool {
	for _, prefix := range p.prefixes {
		rest, ok := strings.CutPrefix(region, prefix+"-")
		if !ok {
			continue
		}
		word, number, ok := strings.Cut(rest, "-")
		if ok && word != "" && number != "" && strings.Trim(word, wordChars) == "" && strings.Trim(number, digits) == "" {
			return true
		}
	}
	return false
}

const (
	digits    = "0123456789"
	wordChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_" + digits
)

// globalRegions are the partitions' pseudo-Regions, which their patterns
// do not match.
var globalRegions = map[string]string{
	"aws-global": "aws", "aws-cn-global": "aws-cn", "aws-iso-global": "aws-iso", "aws-iso-b-global": "aws-iso-b",
	"aws-iso-e-global": "aws-iso-e", "aws-iso-f-global": "aws-iso-f", "aws-us-gov-global": "aws-us-gov",
}

func partitionOf(region string) partition {
	if id, ok := globalRegions[region]; ok {
		for _, p := range partitions {
			if p.id == id {
				return p
			}
		}
	}
	for _, p := range partitions {
		if p.matches(region) {
			return p
		}
	}
	return partitions[0]
}

func host(name string, fips bool, region, suffix string) string {
	if fips {
		name += "-fips"
	}
	return "https://" + name + "." + region + "." + suffix
}

// validRegion is the SDK's check of a Region used as a host label: 1 to
// 63 letters, digits and hyphens, not starting or ending with a hyphen.
func validRegion(region string) bool {
	return region != "" && len(region) <= 63 && strings.Trim(region, wordChars[:52]+digits+"-") == "" &&
		region[0] != '-' && region[len(region)-1] != '-'
}

// endpoint is the base URL of svc's requests: the configured endpoint if
// there is one, else the Region's, as the SDK's endpoint rules give it.
func (c Config) endpoint(svc Service) (string, error) {
	if url := c.configuredEndpoint(svc); url != "" {
		if c.FIPS || c.DualStack {
			return "", fmt.Errorf("%s: a configured endpoint (%s) cannot be combined with AWS_USE_FIPS_ENDPOINT "+
				"or AWS_USE_DUALSTACK_ENDPOINT", svc.name, url)
		}
		return strings.TrimSuffix(url, "/"), nil
	}
	if !validRegion(c.Region) {
		return "", fmt.Errorf("AWS_REGION %q is not a valid Region name", c.Region)
	}
	p := partitionOf(c.Region)
	if svc.endpoint != nil {
		if url, ok := svc.endpoint(p, c.Region, c.FIPS, c.DualStack); ok {
			return url, nil
		}
	}
	suffix := p.dnsSuffix
	if c.DualStack {
		suffix = p.dualStackSuffix
	}
	return host(svc.name, c.FIPS, c.Region, suffix), nil
}
