package oidc

import "fmt"

// The published key set's limits at AWS's verifiers. ALB's JWT verification
// reads at most 10 keys; it and API Gateway HTTP API JWT authorizers refuse
// a key set over 150,000 bytes. The byte warning comes early, at 100,000, to
// leave room for the next rotation's keys.
const (
	MaxKeysALB    = 10
	WarnSetBytes  = 100_000
	MaxSetBytesGW = 150_000
)

// KeySetWarnings says which verifiers a key set of n keys and size bytes
// would break or come close to breaking; nil when none.
func KeySetWarnings(n, size int) []string {
	var out []string
	if n > MaxKeysALB {
		out = append(out, fmt.Sprintf("the key set holds %d keys: ALB JWT verification reads at most %d", n, MaxKeysALB))
	}
	if size > WarnSetBytes {
		out = append(out, fmt.Sprintf("the key set is %d bytes: ALB and API Gateway HTTP API authorizers refuse more than %d", size, MaxSetBytesGW))
	}
	return out
}
