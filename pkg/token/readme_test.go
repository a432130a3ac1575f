package token

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strconv"
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

// The table of the errors the stack's settings add says what the signer
// answers with those settings: keep it true.
func TestReadmeRulesTable(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| ((?:`[A-Z_]+=[^`]*` ?)+) \\| `(\\{.*\\})` \\| `(invalid request: .*)` \\|$")
	rows := row.FindAllStringSubmatch(readme(t), -1)
	if len(rows) < 5 {
		t.Fatalf("found %d rows of the README's table of settings' errors", len(rows))
	}
	for _, r := range rows {
		iss, _, _ := newIssuer(t, "ES256", readmeSettings(t, r[1])...)
		_, err := iss.Invoke(context.Background(), []byte(r[2]))
		if err == nil || err.Error() != r[3] {
			t.Errorf("%s %s:\n got  %v\n README %s", r[1], r[2], err, r[3])
		}
		if typ, _ := errorType(t, iss, r[2]); typ != "RequestError" {
			t.Errorf("%s %s: errorType %q, README says RequestError", r[1], r[2], typ)
		}
	}
}

// readmeSettings are the options functions/signer gives the issuer for the
// settings `NAME=value` of the README's table.
func readmeSettings(t *testing.T, settings string) []Option {
	t.Helper()
	var opts []Option
	kms, batch := false, 0
	for _, s := range strings.Fields(strings.ReplaceAll(settings, "`", " ")) {
		name, value, _ := strings.Cut(s, "=")
		n, _ := strconv.Atoi(value)
		switch name {
		case "ISSUER_URL":
			opts = append(opts, WithIssuer(value))
		case "ALLOWED_AUDIENCES":
			opts = append(opts, WithAllowedAudiences(strings.Split(value, ",")))
		case "MAX_CLAIMS_BYTES":
			opts = append(opts, WithMaxClaimsBytes(n))
		case "MAX_BATCH_KMS":
			batch = n
		case "KEY_CUSTODY":
			kms = value == "kms"
		default:
			t.Fatalf("README's table names the setting %s", s)
		}
	}
	if kms && batch > 0 {
		opts = append(opts, WithKMSBatchLimit(batch))
	}
	return opts
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
