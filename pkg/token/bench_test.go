package token_test

import (
	"testing"

	"jwks-issuer/internal/perf"
)

// BenchmarkPaths runs every path `make bench` reports (internal/perf), one
// sub-benchmark per path name: es256-floor-asn1, es256-signer,
// es256-golangjwt, es256-batch100, es256-verify, ... `make bench` runs the
// same functions in interleaved rounds and prints medians and ratios.
func BenchmarkPaths(b *testing.B) {
	paths, err := perf.Paths()
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range paths {
		b.Run(p.Name, p.Bench)
	}
}
