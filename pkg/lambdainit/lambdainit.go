// Package lambdainit reports a failure during a function's start-up.
package lambdainit

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// Fail logs err and reports it through the Lambda Runtime API's init error
// endpoint, so that the caller of the failed invoke sees the message (not
// only "Runtime.ExitError"), then exits.
func Fail(log *slog.Logger, msg string, err error) {
	log.Error(msg, "error", err.Error())
	if api := os.Getenv("AWS_LAMBDA_RUNTIME_API"); api != "" {
		body, _ := json.Marshal(map[string]string{"errorMessage": msg + ": " + err.Error(), "errorType": "Runtime.InvalidConfiguration"})
		req, _ := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
		req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.InvalidConfiguration")
		client := http.Client{Timeout: 2 * time.Second}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	os.Exit(1)
}
