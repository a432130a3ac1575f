package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/perf"
	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
	"jwks-issuer/pkg/store/awsstore"
	"jwks-issuer/pkg/token"
)

// binarySizes builds the signer as deployed (Makefile BUILD_FLAGS) for each
// architecture and returns its size in bytes.
func binarySizes(fn string) (map[string]int64, error) {
	dir, err := os.MkdirTemp("", "bench-size-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sizes := map[string]int64{}
	for _, arch := range []string{"arm64", "amd64"} {
		out := filepath.Join(dir, arch, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-buildvcs=false",
			"-o", out, "./functions/"+fn)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s for %s: %v\n%s", fn, arch, err, b)
		}
		st, err := os.Stat(out)
		if err != nil {
			return nil, err
		}
		sizes[arch] = st.Size()
	}
	return sizes, nil
}

// coldStart measures the real signer binary: process start to the first
// token, with the key fetched from moto.
type coldStart struct {
	toToken    []float64 // ms, start → first token (invoked at once)
	toReady    []float64 // ms, start → first poll of the Runtime API (init done)
	firstInvk  []float64 // ms, first invocation, started after init
	emulator   []float64 // ms, one GetSecretValue on a new connection
	goInitMs   float64   // package initialisers (GODEBUG=inittrace=1)
	goInitTop  []string
	callsFirst map[string]float64
	callsWarm  map[string]float64
	callsBatch map[string]float64
	batchItems int
	kms        *kmsResult
	kmsErr     error
}

func measureColdStart(ctx context.Context, runs int, logf func(string, ...any)) (*coldStart, error) {
	logf("building the signer and rotator for this machine")
	defer testenv.RemoveBuilds()
	signerBin, err := testenv.BuildLambdaBinary("jwks-issuer/functions/signer")
	if err != nil {
		return nil, err
	}
	rotatorBin, err := testenv.BuildLambdaBinary("jwks-issuer/functions/rotator")
	if err != nil {
		return nil, err
	}
	logf("starting moto_server")
	moto, err := testenv.StartMotoProcess()
	if err != nil {
		return nil, err
	}
	defer moto.Stop()
	s, err := stack.New(ctx, moto, signerBin, rotatorBin, map[string]string{
		"ACTIVATION_GRACE_SECONDS": "0",
		"JWKS_MAX_AGE_SECONDS":     "0",
	})
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	logf("first rotation: a key to sign with")
	if err := s.Rotate(ctx, stack.NewToken()); err != nil {
		return nil, err
	}
	if _, err := s.Sign(ctx, perf.Payload); err != nil {
		return nil, fmt.Errorf("the signer does not sign after the rotation: %w", err)
	}
	s.Stop()

	env := append(moto.Env(), "SECRET_ID="+s.SecretARN, "AWS_LAMBDA_FUNCTION_NAME=signer")
	cs := &coldStart{}
	logf("%d cold starts of the signer", runs)
	for i := range runs {
		// Invoked at once: the invocation waits for init, as a cold start does.
		ms, err := timeFirstToken(ctx, signerBin, env)
		if err != nil {
			return nil, err
		}
		cs.toToken = append(cs.toToken, ms)
		// Init and first invocation apart.
		ready, first, err := timeInitThenInvoke(ctx, signerBin, env)
		if err != nil {
			return nil, err
		}
		cs.toReady, cs.firstInvk = append(cs.toReady, ready), append(cs.firstInvk, first)
		ems, err := timeGetSecret(ctx, moto, s.SecretARN)
		if err != nil {
			return nil, err
		}
		cs.emulator = append(cs.emulator, ems)
		logf("cold start %d/%d: %.1f ms to the first token", i+1, runs, ms)
	}
	if cs.goInitMs, cs.goInitTop, err = goInit(ctx, signerBin, env); err != nil {
		return nil, err
	}
	logf("counting AWS calls per token (SDK middleware)")
	if err := cs.countCalls(ctx, moto, s.SecretARN); err != nil {
		return nil, err
	}
	logf("KMS custody: rotating a KMS key in, counting calls")
	cs.kms, cs.kmsErr = measureKMS(ctx, moto, signerBin, rotatorBin)
	return cs, nil
}

func timeFirstToken(ctx context.Context, bin string, env []string) (float64, error) {
	f, err := testenv.StartFunctionProcess(bin, env)
	if err != nil {
		return 0, err
	}
	defer f.Stop()
	res, err := f.Invoke(ctx, []byte(perf.Payload))
	elapsed := time.Since(f.StartedAt())
	if err == nil && res.Err != nil {
		err = res.Err
	}
	if err != nil || !strings.Contains(string(res.Payload), `"token"`) {
		return 0, fmt.Errorf("cold start: %v %s (logs: %s)", err, res.Payload, f.Logs())
	}
	return ms(elapsed), nil
}

func timeInitThenInvoke(ctx context.Context, bin string, env []string) (ready, first float64, err error) {
	f, err := testenv.StartFunctionProcess(bin, env)
	if err != nil {
		return 0, 0, err
	}
	defer f.Stop()
	if err := f.WaitReady(ctx); err != nil {
		return 0, 0, err
	}
	ready = ms(time.Since(f.StartedAt()))
	start := time.Now()
	res, err := f.Invoke(ctx, []byte(perf.Payload))
	first = ms(time.Since(start))
	if err == nil && res.Err != nil {
		err = res.Err
	}
	return ready, first, err
}

// timeGetSecret is the emulator's share of a cold start: one GetSecretValue
// on a new connection from a warm process.
func timeGetSecret(ctx context.Context, moto *testenv.Moto, secretID string) (float64, error) {
	cfg := stack.Config(moto)
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{}}
	client := secretsmanager.NewFromConfig(cfg)
	start := time.Now()
	_, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &secretID, VersionStage: aws.String("AWSCURRENT")})
	return ms(time.Since(start)), err
}

// goInit sums the package initialisers of one start of the signer.
func goInit(ctx context.Context, bin string, env []string) (float64, []string, error) {
	f, err := testenv.StartFunctionProcess(bin, append(slices.Clone(env), "GODEBUG=inittrace=1"))
	if err != nil {
		return 0, nil, err
	}
	defer f.Stop()
	if err := f.WaitReady(ctx); err != nil {
		return 0, nil, err
	}
	type pkgInit struct {
		name string
		ms   float64
	}
	var total float64
	var all []pkgInit
	sc := bufio.NewScanner(strings.NewReader(f.Logs()))
	for sc.Scan() {
		// init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs
		fs := strings.Fields(sc.Text())
		if len(fs) >= 7 && fs[0] == "init" && fs[6] == "clock," {
			v, err := strconv.ParseFloat(fs[4], 64)
			if err == nil {
				total += v
				all = append(all, pkgInit{fs[1], v})
			}
		}
	}
	slices.SortFunc(all, func(a, b pkgInit) int {
		switch {
		case a.ms > b.ms:
			return -1
		case a.ms < b.ms:
			return 1
		}
		return 0
	})
	var top []string
	for _, p := range all[:min(5, len(all))] {
		top = append(top, fmt.Sprintf("%s=%.2f", p.name, p.ms))
	}
	return total, top, nil
}

// perToken sums calls by service and divides by the tokens issued.
func perToken(n map[stack.Call]int, tokens int) map[string]float64 {
	out := map[string]float64{"Secrets Manager": 0, "KMS": 0}
	for k, v := range n {
		out[k.Service] += float64(v) / float64(tokens)
	}
	return out
}

// countCalls wires the signer as functions/signer does (Secrets Manager
// custody), with a counting middleware on the SDK client, and issues
// tokens: the first (cold cache), then warm ones, single and batched.
func (cs *coldStart) countCalls(ctx context.Context, moto *testenv.Moto, secretID string) error {
	cfg := stack.Config(moto)
	counter := stack.CountCalls(&cfg)
	secret := awsstore.NewSecrets(awsstore.NewSecretsManagerClient(cfg), secretID)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cache := token.NewKeyCache(token.SecretKeyLoader(secret, nil), 60*time.Second, time.Now, log)
	iss := token.NewIssuer(cache, time.Hour, time.Now)

	if _, err := iss.Invoke(ctx, []byte(perf.Payload)); err != nil {
		return err
	}
	cs.callsFirst = perToken(counter.Take(), 1)
	const warm = 200
	for range warm {
		if _, err := iss.Invoke(ctx, []byte(perf.Payload)); err != nil {
			return err
		}
	}
	cs.callsWarm = perToken(counter.Take(), warm)
	cs.batchItems = 100
	if _, err := iss.Invoke(ctx, perf.BatchPayload(cs.batchItems)); err != nil {
		return err
	}
	cs.callsBatch = perToken(counter.Take(), cs.batchItems)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func formatCalls(m map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%.3f", strings.ReplaceAll(strings.ToLower(k), " ", ""), m[k]))
	}
	return strings.Join(parts, " ")
}
