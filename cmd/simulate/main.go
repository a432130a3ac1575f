// Command simulate runs the rotation simulation over many seeds and years
// and ends with one summary line. It exits 1 if any seed found a violation;
// the seed and its problems are printed so they can become a regression test.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"jwks-issuer/pkg/sim"
)

func main() {
	seeds := flag.Int("seeds", 20, "number of seeds (1..N)")
	years := flag.Float64("years", 3, "simulated years per seed")
	first := flag.Uint64("first-seed", 1, "first seed")
	flag.Parse()

	start := time.Now()
	duration := time.Duration(*years * 365 * 24 * float64(time.Hour))
	reports := make([]sim.Report, *seeds)
	work := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				seed := *first + uint64(i)
				r := sim.Run(sim.DefaultParams(seed, duration))
				reports[i] = r
				custody := "secretsmanager"
				if sim.DefaultParams(seed, duration).ParameterStore {
					custody = "parameterstore"
				}
				fmt.Printf("seed=%d custody=%s issued=%d rotations=%d refused=%d emergencies=%d faults=%d forged=%d forged_refused=%d publications=%d parameter_writes=%d violations=%d\n",
					seed, custody, r.Issued, r.Rotations, r.Refused, r.Emergencies, r.Faults, r.Forged, r.ForgedRefused, r.Publications, r.ParameterWrites, r.Violations())
			}
		}()
	}
	for i := range *seeds {
		work <- i
	}
	close(work)
	wg.Wait()

	var total sim.Report
	for _, r := range reports {
		total.Add(r)
	}
	for _, p := range total.Problems {
		fmt.Println("problem:", p)
	}
	fmt.Printf("verifications=%d sign_errors=%d revoked_rejected=%d wall=%s\n",
		total.Verifications, total.SignErrors, total.RevokedRejected, time.Since(start).Round(time.Second))
	fmt.Printf("simulated YEARS=%g SEEDS=%d issued=%d rotations=%d emergencies=%d faults=%d forged=%d forged_refused=%d parameter_writes=%d wrongly_rejected=%d accepted_after_revocation=%d invariant_breaks=%d\n",
		*years, *seeds, total.Issued, total.Rotations, total.Emergencies, total.Faults, total.Forged, total.ForgedRefused, total.ParameterWrites,
		total.WronglyRejected, total.AcceptedAfterRevocation, total.InvariantBreaks)
	if total.Violations() > 0 {
		os.Exit(1)
	}
}
