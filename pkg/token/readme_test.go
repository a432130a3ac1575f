package token

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The error table of README.md says what the signer answers: keep it true.
func TestReadmeErrorTable(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| `(\\{.*\\})` \\| `(invalid request: .*)` \\|$")
	rows := row.FindAllStringSubmatch(readme(t), -1)
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
		if typ, _ := errorType(t, iss, r[1]); typ != "RequestError" {
			t.Errorf("%s: errorType %q, README says RequestError", r[1], typ)
		}
	}
}

// README.md's errorType table lists exactly the errorTypes the signer
// answers with (TestErrorTypes shows each one happening).
func TestReadmeErrorTypes(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z]+Error)` \\| [^|]+ \\| [^|]+ \\|$")
	var documented []string
	for _, r := range row.FindAllStringSubmatch(readme(t), -1) {
		documented = append(documented, r[1])
	}
	var answered []string
	for _, tc := range errorCases() {
		if !slices.Contains(answered, tc.want) {
			answered = append(answered, tc.want)
		}
	}
	slices.Sort(documented)
	slices.Sort(answered)
	if !slices.Equal(documented, answered) {
		t.Fatalf("README documents the errorTypes %v; the signer answers with %v", documented, answered)
	}
}
