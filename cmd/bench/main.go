// Command bench is `make bench`: the warm-path benchmarks of internal/perf
// (medians of interleaved rounds, ratios to the signing floor and to a
// golang-jwt baseline), batch throughput, the signer's cold start under the
// test Lambda Runtime API with its key in moto_server, its binary size, and
// the AWS calls it makes per token.
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
)

func main() {
	testing.Init()
	count := flag.Int("count", 6, "rounds of every warm-path benchmark")
	benchtime := flag.Duration("benchtime", time.Second, "duration of one benchmark run")
	coldRuns := flag.Int("cold", 9, "cold starts to measure (0: skip the cold start, binary size and AWS call counts)")
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

	if *coldRuns <= 0 {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("\n## Signer binary (stripped, -ldflags \"-s -w\", -tags lambda.norpc)\n\n")
	sizes, err := binarySizes("signer")
	if err != nil {
		fail(err)
	}
	for _, arch := range []string{"arm64", "amd64"} {
		fmt.Printf("binary_bytes=%d function=signer goos=linux goarch=%s (%.2f MB)\n", sizes[arch], arch, float64(sizes[arch])/1e6)
	}

	cs, err := measureColdStart(ctx, *coldRuns, logf)
	if err != nil {
		fail(err)
	}
	cold, emu := median(cs.toToken), median(cs.emulator)
	fmt.Printf("\n## Cold start: signer process start → first token, key from moto_server (median of %d)\n\n", *coldRuns)
	fmt.Printf("start → first token (invoked at once): %s ms\n", list(cs.toToken))
	fmt.Printf("start → ready (polling for work):     %s ms\n", list(cs.toReady))
	fmt.Printf("then the first invocation:            %s ms\n", list(cs.firstInvk))
	fmt.Printf("moto GetSecretValue, new connection:  %s ms\n", list(cs.emulator))
	fmt.Printf("Go package initialisers: %.2f ms (largest: %s)\n\n", cs.goInitMs, strings.Join(cs.goInitTop, " "))
	fmt.Printf("cold_start_ms=%.1f emulator_ms=%.1f init_ms=%.1f\n", cold, emu, cold-emu)
	fmt.Printf("ready_ms=%.1f first_invoke_ms=%.1f\n", median(cs.toReady), median(cs.firstInvk))

	fmt.Printf("\n## AWS calls per token (SDK middleware counter, against moto_server)\n\n")
	fmt.Printf("aws_calls_per_token custody=secretsmanager phase=first_token %s\n", formatCalls(cs.callsFirst))
	fmt.Printf("aws_calls_per_token custody=secretsmanager phase=warm %s\n", formatCalls(cs.callsWarm))
	fmt.Printf("aws_calls_per_token custody=secretsmanager phase=warm_batch%d %s\n", cs.batchItems, formatCalls(cs.callsBatch))
	if cs.kmsErr != nil {
		fmt.Printf("aws_calls_per_token custody=kms not measured: %v\n", cs.kmsErr)
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
