// Package lambdainit starts a function: its logger, and the report of a
// failure during start-up.
package lambdainit

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// NewLogger returns the function's logger, JSON lines on stdout, and makes
// it the destination of the standard log package as well, at Warn: there
// aws-lambda-go writes each function error's payload and the warnings of its
// own machinery, which would otherwise be plain-text lines on stderr that
// CloudWatch Logs Insights and metric filters cannot read. (The AWS SDK's
// logger is routed through the returned logger by awsstore.LoadConfig.)
func NewLogger() *slog.Logger {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	slog.SetDefault(log)
	slog.SetLogLoggerLevel(slog.LevelWarn)
	return log
}

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
