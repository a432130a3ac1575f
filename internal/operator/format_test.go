package operator

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

func TestHuman(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{1500 * time.Millisecond, "1.5s"},
		{42 * time.Second, "42s"},
		{4*time.Minute + 5*time.Second, "4m05s"},
		{3*time.Hour + 12*time.Minute, "3h12m"},
		{47 * time.Hour, "47h00m"},
		{29*24*time.Hour + 21*time.Hour + 5*time.Minute, "29d 21h"},
		{-90 * time.Second, "1m30s"},
	} {
		if got := human(tt.d); got != tt.want {
			t.Errorf("human(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestRatePeriod(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want time.Duration
		ok   bool
	}{
		{"rate(30 days)", 30 * 24 * time.Hour, true},
		{"rate(1 day)", 24 * time.Hour, true},
		{"rate(4 hours)", 4 * time.Hour, true},
		{"cron(0 8 1 * ? *)", 0, false},
		{"rate(0 days)", 0, false},
		{"", 0, false},
	} {
		got, ok := ratePeriod(tt.expr)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ratePeriod(%q) = %v, %v; want %v, %v", tt.expr, got, ok, tt.want, tt.ok)
		}
	}
}

// Every AWS failure a run can meet says what to do next.
func TestHintFor(t *testing.T) {
	op := func(service, operation string, err error) error {
		return &smithy.OperationError{ServiceID: service, OperationName: operation, Err: err}
	}
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"no credentials", op("Secrets Manager", "DescribeSecret", &v4.SigningError{Err: errors.New("failed to retrieve credentials")}), "no AWS credentials"},
		{"an expired session", op("Secrets Manager", "DescribeSecret", api("ExpiredTokenException")), "aws sso login"},
		{"values denied", op("Secrets Manager", "GetSecretValue", api("AccessDeniedException")), "break-glass role"},
		{"another denial", op("Lambda", "GetFunctionConfiguration", api("AccessDeniedException")), "may not call lambda:GetFunctionConfiguration"},
		{"no such secret", op("Secrets Manager", "DescribeSecret", api("ResourceNotFoundException")), "no such secret"},
		{"no such function", op("Lambda", "Invoke", api("ResourceNotFoundException")), "no such function"},
		{"a hinted error", fmt.Errorf("wrapped: %w", &hinted{errors.New("x"), "do this"}), "do this"},
	} {
		if got := hintFor(tt.err); !strings.Contains(got, tt.want) {
			t.Errorf("%s: hint %q, want it to contain %q", tt.name, got, tt.want)
		}
	}
	if got := hintFor(errors.New("something else")); got != "" {
		t.Errorf("an unknown error gets the hint %q", got)
	}
}
