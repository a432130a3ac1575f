package token

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The error table of README.md says what the signer answers: keep it true.
func TestReadmeErrorTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(\\{.*\\})` \\| `(invalid request: .*)` \\|$")
	rows := row.FindAllStringSubmatch(string(readme), -1)
	if len(rows) < 5 {
		t.Fatalf("found %d rows of the README's error table", len(rows))
	}
	iss, _, _ := newIssuer(t, "ES256")
	// A number that depends on the day the README was written.
	fromNow := regexp.MustCompile(`is \d+ seconds from now`)
	for _, r := range rows {
		_, err := iss.Invoke(context.Background(), []byte(r[1]))
		if err == nil {
			t.Errorf("%s: accepted, README says %q", r[1], r[2])
			continue
		}
		got, want := fromNow.ReplaceAllString(err.Error(), "is N seconds from now"), fromNow.ReplaceAllString(r[2], "is N seconds from now")
		if got != want || !strings.HasPrefix(got, "invalid request: ") {
			t.Errorf("%s:\n got  %s\n README %s", r[1], got, want)
		}
	}
}
