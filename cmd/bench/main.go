// Command bench is `make bench`: the warm-path benchmarks of internal/perf
// (medians of interleaved rounds, ratios to the signing floor and to a
// golang-jwt baseline), batch throughput and the speedup of signing a batch
// on every core, the functions' binary sizes, the signer's cold start under
// the test Lambda Runtime API with its key in moto_server, side by side with
// a plain golang-jwt signer's (cmd/bench/internal/plainsigner), and the AWS
// calls the real signer makes per token in each custody.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"jwks-issuer/pkg/keys"
)

func main() {
	testing.Init()
	count := flag.Int("count", 6, "rounds of every warm-path benchmark")
	benchtime := flag.Duration("benchtime", time.Second, "duration of one benchmark run")
	coldRuns := flag.Int("cold", 31, "cold starts of each signer to measure (0: skip the cold start, binary sizes and AWS call counts)")
	batchRounds := flag.Int("batch-rounds", 7, "rounds of the batch speedup (0: skip it)")
	before := flag.String("before", "", "`DIR` of another checkout of this module (the code before a change): its binaries' sizes, and its signer cold-started in the same rounds")
	only := flag.String("paths", "", "regular expression: run only the warm paths it matches (floors need their candidates)")
	gogc := flag.Int("gogc", 400, "GOGC for the warm paths: 400 is what template.yaml gives the signer")
	flag.Parse()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		fail(err)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

	debug.SetGCPercent(*gogc)
	fmt.Printf("# jwks-issuer benchmarks\ncpu: %s (%d logical CPUs, GOMAXPROCS %d)\ngo: %s %s/%s, GOGC=%d\n",
		cpuName(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, *gogc)

	match, err := regexp.Compile(*only)
	if err != nil {
		fail(err)
	}
	results, err := runMicro(*count, match, logf)
	if err != nil {
		fail(err)
	}
	summarise(results).print(*count, *benchtime)

	if *batchRounds > 0 {
		const items = 1000
		logf("batch speedup: batches of %d, in turn and on %d workers, %d rounds", items, runtime.GOMAXPROCS(0), *batchRounds)
		sps, err := measureBatchSpeedup([]keys.Algorithm{keys.ES256, keys.RS256}, items, *batchRounds)
		if err != nil {
			fail(err)
		}
		fmt.Printf("\n## Batch of %d local-key tokens: in turn against every worker (wall clock, median of %d)\n\n", items, *batchRounds)
		for _, sp := range sps {
			fmt.Printf("batch alg=%s items=%d workers=%d in_turn_ms=%.1f parallel_ms=%.1f batch_speedup=%.2f\n",
				sp.alg, sp.items, sp.workers, median(sp.inTurn), median(sp.parallel), sp.ratio())
		}
	}

	if *coldRuns <= 0 {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("\n## Binaries (stripped: -trimpath, -ldflags \"-s -w\", -tags lambda.norpc)\n\n")
	for _, fn := range functions {
		sizes, err := binarySizes(".", fn)
		if err != nil {
			fail(err)
		}
		var was map[string]int64
		if *before != "" {
			if was, err = binarySizes(*before, fn); err != nil {
				fail(err)
			}
		}
		for _, arch := range []string{"arm64", "amd64"} {
			fmt.Printf("binary_bytes=%d function=%s goos=linux goarch=%s (%.2f MB)", sizes[arch], fn, arch, float64(sizes[arch])/1e6)
			if was != nil {
				fmt.Printf(" before_bytes=%d (%.2f MB, %+.1f%%)", was[arch], float64(was[arch])/1e6, 100*float64(sizes[arch]-was[arch])/float64(was[arch]))
			}
			fmt.Println()
		}
	}

	cs, err := measureColdStart(ctx, *coldRuns, *before, logf)
	if err != nil {
		fail(err)
	}
	cold, plain, emu := median(cs.toToken), median(cs.plain), median(cs.emulator)
	fmt.Printf("\n## Cold start: process start → first token, key from moto_server (median of %d; the signers started in turn, the order reversed every other round)\n\n", *coldRuns)
	fmt.Printf("signer, start → first token (invoked at once): %s ms\n", list(cs.toToken))
	fmt.Printf("plain signer, start → first token:             %s ms\n", list(cs.plain))
	fmt.Printf("signer, start → ready (polling for work):      %s ms\n", list(cs.toReady))
	fmt.Printf("signer, then the first invocation:             %s ms\n", list(cs.firstInvk))
	fmt.Printf("plain signer, start → ready:                   %s ms\n", list(cs.plainReady))
	fmt.Printf("moto GetSecretValue, new connection:           %s ms\n", list(cs.emulator))
	fmt.Printf("Go package initialisers, signer: %.2f ms (largest: %s)\n", cs.goInit.ms, strings.Join(cs.goInit.top, " "))
	fmt.Printf("Go package initialisers, plain signer: %.2f ms (largest: %s)\n\n", cs.plainInit.ms, strings.Join(cs.plainInit.top, " "))
	if len(cs.other) > 0 {
		fmt.Printf("signer before (%s), start → first token: %s ms\n", *before, list(cs.other))
		fmt.Printf("Go package initialisers, signer before: %.2f ms (largest: %s)\n\n", cs.otherInit.ms, strings.Join(cs.otherInit.top, " "))
	}
	fmt.Printf("cold_start_ms=%.1f plain_ms=%.1f cold_vs_plain=%.2f\n", cold, plain, cold/plain)
	if len(cs.other) > 0 {
		fmt.Printf("before_ms=%.1f before_vs_plain=%.2f cold_vs_before=%.2f\n", median(cs.other), median(cs.other)/plain, cold/median(cs.other))
	}
	fmt.Printf("emulator_ms=%.1f init_ms=%.1f plain_init_ms=%.1f\n", emu, cold-emu, plain-emu)
	fmt.Printf("ready_ms=%.1f first_invoke_ms=%.1f plain_ready_ms=%.1f\n", median(cs.toReady), median(cs.firstInvk), median(cs.plainReady))

	fmt.Printf("\n## AWS calls per token (the real signer binary, counted by X-Amz-Target in front of moto_server)\n\n")
	for _, c := range cs.calls {
		c.print()
	}
	if cs.kmsErr != nil {
		fmt.Printf("kms batch not measured: %v\n", cs.kmsErr)
	} else {
		cs.kms.print()
	}
}

func list(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.1f", x))
	}
	return fmt.Sprintf("median %.1f  [%s]", median(xs), strings.Join(parts, " "))
}

func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	name, family, model := "", "", ""
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			name = strings.TrimSpace(v)
		case "cpu family":
			family = strings.TrimSpace(v)
		case "model":
			model = strings.TrimSpace(v)
		}
		if name != "" && family != "" && model != "" {
			break
		}
	}
	return fmt.Sprintf("%s (family %s, model %s)", name, family, model)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
