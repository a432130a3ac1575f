package sim

import (
	"testing"
	"time"
)

// A short run for every `go test`; `make simulate` runs years and seeds.
func TestSimulationShort(t *testing.T) {
	var total Report
	for seed := uint64(1); seed <= 3; seed++ {
		r := Run(DefaultParams(seed, 120*24*time.Hour))
		total.Add(r)
	}
	t.Logf("issued=%d verifications=%d rotations=%d refused=%d emergencies=%d faults=%d forged=%d forged_refused=%d publications=%d parameter_writes=%d sign_errors=%d revoked_rejected=%d",
		total.Issued, total.Verifications, total.Rotations, total.Refused, total.Emergencies, total.Faults, total.Forged, total.ForgedRefused,
		total.Publications, total.ParameterWrites, total.SignErrors, total.RevokedRejected)
	if total.Issued < 1000 || total.Rotations < 5 || total.Faults < 10 || total.Emergencies == 0 || total.ForgedRefused == 0 ||
		total.ParameterWrites == 0 {
		t.Fatalf("the simulation did too little to mean anything: %+v", total)
	}
	if total.Violations() != 0 {
		t.Fatalf("wrongly_rejected=%d accepted_after_revocation=%d invariant_breaks=%d\n%v",
			total.WronglyRejected, total.AcceptedAfterRevocation, total.InvariantBreaks, total.Problems)
	}
}

// Seeds that once found a violation, with the parameters that found it.
func TestSimulationRegressions(t *testing.T) {
	tests := []struct {
		name   string
		params func() Params
	}{
		// A refused rotation whose AWSPENDING removal failed left the
		// rotation "in progress" and reported a clean refusal.
		{"refusal with a failed AWSPENDING removal", func() Params {
			p := DefaultParams(1, 10*24*time.Hour)
			p.RotateDuring = 0.025
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Run(tt.params())
			if r.Violations() != 0 {
				t.Fatalf("wrongly_rejected=%d accepted_after_revocation=%d invariant_breaks=%d\n%v",
					r.WronglyRejected, r.AcceptedAfterRevocation, r.InvariantBreaks, r.Problems)
			}
		})
	}
}
