// Command echolambda is a minimal Lambda function used to test the
// testenv harness against the real aws-lambda-go runtime client.
//
// It answers {"echo": <input>}, except for a few control inputs:
//
//	{"fail": true}     returns an error with message "boom"
//	{"env": "NAME"}    answers {"env": <value of $NAME>}
//	{"exit": true}     exits the process with status 3 mid-invocation
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

type control struct {
	Fail bool   `json:"fail"`
	Exit bool   `json:"exit"`
	Env  string `json:"env"`
}

func handle(_ context.Context, in json.RawMessage) (any, error) {
	var c control
	// Inputs that are not control objects (arrays, strings...) are simply
	// echoed, so a decoding error is not a failure here.
	_ = json.Unmarshal(in, &c)
	switch {
	case c.Fail:
		return nil, errors.New("boom")
	case c.Exit:
		os.Exit(3)
	case c.Env != "":
		return map[string]string{"env": os.Getenv(c.Env)}, nil
	}
	return map[string]json.RawMessage{"echo": in}, nil
}

func main() {
	lambda.Start(handle)
}
