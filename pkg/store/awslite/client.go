package awslite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Client calls one service. It is safe for concurrent use.
type Client struct {
	svc      Service
	url      string // endpoint + "/"
	region   string
	creds    aws.Credentials
	http     aws.HTTPClient
	signer   *v4.Signer
	retryer  aws.RetryerV2
	now      func() time.Time
	maxReply int64
}

// userAgent names the caller to AWS (CloudTrail's userAgent).
var userAgent = "jwks-issuer-signer aws-sdk-go-v2/" + aws.SDKVersion

// New returns a client of svc for cfg.
func New(cfg Config, svc Service) (*Client, error) {
	url, err := cfg.endpoint(svc)
	if err != nil {
		return nil, err
	}
	c := &Client{svc: svc, url: url + "/", region: cfg.Region, creds: cfg.Credentials, http: cfg.HTTPClient,
		signer: v4.NewSigner(), now: time.Now, maxReply: 1 << 20}
	if c.http == nil {
		c.http = awshttp.NewBuildableClient()
	}
	standard := func(o *retry.StandardOptions) {
		if cfg.MaxAttempts > 0 {
			o.MaxAttempts = cfg.MaxAttempts
		}
	}
	if cfg.RetryMode == aws.RetryModeAdaptive {
		c.retryer = retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
			o.StandardOptions = append(o.StandardOptions, standard)
		})
	} else {
		c.retryer = retry.NewStandard(standard)
	}
	return c, nil
}

// Endpoint is the URL the client sends its requests to.
func (c *Client) Endpoint() string { return strings.TrimSuffix(c.url, "/") }

// APIError is an error answer of a service.
type APIError struct {
	// Operation is the X-Amz-Target, e.g. "secretsmanager.GetSecretValue".
	Operation  string
	StatusCode int
	// Code is the error's type, e.g. "ResourceNotFoundException".
	Code      string
	Message   string
	RequestID string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.Operation, e.StatusCode)
	if e.RequestID != "" {
		msg += " (request id " + e.RequestID + ")"
	}
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// ErrorCode, ErrorMessage, ErrorFault (smithy.APIError) and HTTPStatusCode
// are what the SDK's retryer classifies an error by: throttling codes and
// 500, 502, 503 and 504 are retried.
func (e *APIError) ErrorCode() string    { return e.Code }
func (e *APIError) ErrorMessage() string { return e.Message }
func (e *APIError) HTTPStatusCode() int  { return e.StatusCode }
func (e *APIError) ErrorFault() smithy.ErrorFault {
	if e.StatusCode >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

var _ smithy.APIError = (*APIError)(nil)

// Code is err's AWS error code, or "".
func Code(err error) string {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return ""
}

// call sends operation with the JSON of in and decodes the answer into out,
// retrying what the SDK's retryer retries, unless retry says otherwise.
func (c *Client) call(ctx context.Context, operation string, in, out any, retry func(error) bool) error {
	target := c.svc.target + "." + operation
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	releaseRetry := func(error) error { return nil }
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
		releaseAttempt, err := c.retryer.GetAttemptToken(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
		reply, err := c.send(ctx, target, body)
		_ = releaseRetry(err)
		_ = releaseAttempt(err)
		if err == nil {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(reply, out); err != nil {
				return fmt.Errorf("%s: reading the answer: %w", target, err)
			}
			return nil
		}
		if ctx.Err() != nil || !c.retryer.IsErrorRetryable(err) || retry != nil && !retry(err) {
			return err
		}
		if attempt >= c.retryer.MaxAttempts() {
			return fmt.Errorf("%w (after %d attempts)", err, attempt)
		}
		if releaseRetry, err = c.retryer.GetRetryToken(ctx, err); err != nil {
			return fmt.Errorf("%s: not retried: %w", target, err)
		}
		delay, err := c.retryer.RetryDelay(attempt, err)
		if err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%s: %w", target, ctx.Err())
		case <-timer.C:
		}
	}
}

// send makes one attempt.
func (c *Client) send(ctx context.Context, target string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("User-Agent", userAgent)
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, c.creds, req, hex.EncodeToString(sum[:]), c.svc.name, c.region, c.now()); err != nil {
		return nil, fmt.Errorf("%s: signing the request: %w", target, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, c.maxReply+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", target, err)
	}
	if int64(len(reply)) > c.maxReply {
		return nil, fmt.Errorf("%s: the answer is larger than %d bytes", target, c.maxReply)
	}
	if resp.StatusCode/100 == 2 {
		return reply, nil
	}
	return nil, apiError(target, resp, reply)
}

// apiError reads an AWS JSON error answer: the type from __type or the
// X-Amzn-ErrorType header, without a namespace ("ns#Code") or a suffix
// ("Code:http://..."), and the message.
func apiError(target string, resp *http.Response, body []byte) *APIError {
	e := &APIError{Operation: target, StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Amzn-RequestId")}
	var doc struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal(body, &doc)
	e.Code = doc.Type
	if e.Code == "" {
		e.Code = doc.Code
	}
	if h := resp.Header.Get("X-Amzn-ErrorType"); h != "" {
		e.Code = h
	}
	if i := strings.IndexByte(e.Code, ':'); i >= 0 {
		e.Code = e.Code[:i]
	}
	if i := strings.LastIndexByte(e.Code, '#'); i >= 0 {
		e.Code = e.Code[i+1:]
	}
	e.Message = doc.Message
	if e.Message == "" {
		e.Message = doc.MessageU
	}
	return e
}
