package testenv

import (
	"encoding/json"
	"strings"
	"testing"
)

// AssertJSONLines fails the test for every line of out that is not a JSON
// object: CloudWatch Logs Insights and metric filters read the functions'
// logs as JSON, and a plain-text line (the SDK's default logger, or the
// standard library's log package, writes them) is lost to both.
func AssertJSONLines(t testing.TB, out string) {
	t.Helper()
	if strings.TrimSpace(out) == "" {
		t.Fatal("the function logged nothing")
	}
	for line := range strings.Lines(out) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("log line is not a JSON object (%v): %q", err, line)
		}
	}
}
