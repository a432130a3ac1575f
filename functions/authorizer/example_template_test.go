package main_test

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// The example wiring in docs/examples/authorizer.yaml passes cfn-lint with
// no finding at all, warnings and informational ones included.
func TestExampleTemplateIsLintClean(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint is not on PATH, so docs/examples/authorizer.yaml was not linted: pip install cfn-lint")
	}
	template, err := filepath.Abs(filepath.Join("..", "..", "docs", "examples", "authorizer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, template).CombinedOutput()
	if err != nil {
		t.Fatalf("cfn-lint %s: %v\n%s", template, err, out)
	}
	if len(out) != 0 {
		t.Fatalf("cfn-lint %s reports:\n%s", template, out)
	}
}
