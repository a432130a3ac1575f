package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// signerAdvice is what a caller does about each errorType (README, Errors).
var signerAdvice = map[string]string{
	"RequestError":        "fix the request: retrying it fails the same way",
	"KeyUnavailableError": "retry later with backoff, and alert; jwks-issuer status says whether the secret holds a key",
	"SigningError":        "retry with backoff",
}

func runSign(ctx context.Context, r *runner, args []string) int {
	fs := r.flags()
	pos, status, ok := r.parse(fs, args)
	if !ok {
		return status
	}
	payload, status, ok := r.signRequest(pos)
	if !ok {
		return status
	}
	c, err := r.clients(ctx)
	if err != nil {
		return r.fail(err)
	}
	signer, err := r.signerName(ctx, c)
	if err != nil {
		return r.fail(err)
	}
	if signer == "" {
		return r.usageError("name the signer: --stack NAME (its SignerFunctionArn output) or --signer NAME")
	}
	out, err := c.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(signer), Payload: payload})
	if err != nil {
		return r.fail(fmt.Errorf("invoke %s: %w", signer, err))
	}
	if out.FunctionError != nil {
		return r.signerRefused(out)
	}
	return r.printTokens(out.Payload)
}

// signRequest is the request: the one argument, or standard input for -.
// It must be JSON; the signer checks the rest.
func (r *runner) signRequest(pos []string) ([]byte, int, bool) {
	if len(pos) != 1 {
		return nil, r.usageError(`give the request as one argument, or - to read it from standard input, e.g. '{"claims":{"aud":"hotsock","sub":"user-1"},"ttl":30}'`), false
	}
	payload := []byte(pos[0])
	if pos[0] == "-" {
		b, err := io.ReadAll(io.LimitReader(r.env.Stdin, 6<<20))
		if err != nil {
			return nil, r.fail(fmt.Errorf("read the request from standard input: %w", err)), false
		}
		payload = b
	}
	if !json.Valid(payload) {
		return nil, r.usageError("the request is not JSON; the README's \"Request and response\" shows its fields"), false
	}
	return payload, 0, true
}

// signerName is --signer, or the stack's SignerFunctionArn output; "" when
// neither names it.
func (r *runner) signerName(ctx context.Context, c *clients) (string, error) {
	if r.t.signer != "" || r.t.stack == "" {
		return r.t.signer, nil
	}
	out, err := c.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(r.t.stack)})
	if err != nil {
		if apiCode(err) == "ValidationError" && strings.Contains(err.Error(), "does not exist") {
			return "", &hinted{fmt.Errorf("no such stack %q in %s", r.t.stack, c.cfg.Region),
				"check --stack, AWS_REGION (or --region) and AWS_PROFILE"}
		}
		return "", fmt.Errorf("describe stack %s: %w", r.t.stack, err)
	}
	signer := ""
	for _, s := range out.Stacks {
		for _, o := range s.Outputs {
			if aws.ToString(o.OutputKey) == "SignerFunctionArn" {
				signer = aws.ToString(o.OutputValue)
			}
		}
	}
	return signer, nil
}

// signerRefused explains a function error: the signer's own errorType with
// what a caller does about it, or one from the Lambda service or runtime.
func (r *runner) signerRefused(out *lambda.InvokeOutput) int {
	var fe struct{ ErrorMessage, ErrorType string }
	_ = json.Unmarshal(out.Payload, &fe)
	fmt.Fprintf(r.err, "the signer refused (%s): %s\n", first(fe.ErrorType, aws.ToString(out.FunctionError)), first(fe.ErrorMessage, string(out.Payload)))
	if advice := signerAdvice[fe.ErrorType]; advice != "" {
		fmt.Fprintf(r.err, "  next: %s\n", advice)
	} else {
		fmt.Fprintf(r.err, "  next: this comes from the Lambda service or runtime, not the signer: retry with backoff\n")
	}
	return ExitProblem
}

// printTokens prints the token, or the tokens of a batch request, one a
// line.
func (r *runner) printTokens(payload []byte) int {
	var resp struct {
		Token  string   `json:"token"`
		Tokens []string `json:"tokens"`
	}
	if err := json.Unmarshal(payload, &resp); err != nil || (resp.Token == "" && resp.Tokens == nil) {
		fmt.Fprintf(r.err, "the signer answered something that is not a token: %s\n", oneLine(payload))
		return ExitProblem
	}
	if resp.Token != "" {
		r.printf("%s\n", resp.Token)
	}
	for _, tok := range resp.Tokens {
		r.printf("%s\n", tok)
	}
	return ExitOK
}
