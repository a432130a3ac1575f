package main

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"jwks-issuer/internal/perf"
	"jwks-issuer/internal/stack"
	"jwks-issuer/internal/testenv"
)

// functions are the deployed binaries whose sizes are reported.
var functions = []string{"signer", "rotator", "authorizer"}

// binarySizes builds fn of the checkout in root as deployed (Makefile
// BUILD_FLAGS) for each architecture and returns its size in bytes.
func binarySizes(root, fn string) (map[string]int64, error) {
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
		cmd.Dir = root
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

// buildHere builds the Lambda function in dir (another checkout: its module
// path is this one's, so testenv's build cache cannot tell them apart) for
// this machine, as testenv builds, into out.
func buildHere(dir, out string) (string, error) {
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the signer before in %s: %v\n%s", dir, err, b)
	}
	return out, nil
}

// plainSigner is the baseline of the cold start: a signer written the
// common way (config.LoadDefaultConfig, one GetSecretValue in init,
// golang-jwt), built and run by the same harness against the same secret.
const plainSigner = "jwks-issuer/cmd/bench/internal/plainsigner"

// coldStart measures the real signer binary and the plain signer, started
// alternately: process start to the first token, with the key in moto.
type coldStart struct {
	toToken    []float64 // ms, start → first token (invoked at once)
	plain      []float64 // ms, the same for the plain signer
	toReady    []float64 // ms, start → first poll of the Runtime API (init done)
	firstInvk  []float64 // ms, first invocation, started after init
	plainReady []float64 // ms, start → first poll, plain signer
	other      []float64 // ms, start → first token of the -before signer, if any
	emulator   []float64 // ms, one GetSecretValue on a new connection
	goInit     initTrace // package initialisers (GODEBUG=inittrace=1)
	plainInit  initTrace
	otherInit  initTrace
	calls      []custodyCalls
	kms        *kmsResult
	kmsErr     error
}

// initTrace is the median total of the package initialisers over a few
// starts, and the largest of them.
type initTrace struct {
	ms  float64
	top []string
}

// measureColdStart measures runs cold starts of each signer. before, if
// not "", is another checkout of the module, whose signer is started in
// the same rounds: how a change compares with the code before it, in one
// run.
func measureColdStart(ctx context.Context, runs int, before string, logf func(string, ...any)) (*coldStart, error) {
	logf("building the signer, the rotator and the plain signer for this machine")
	defer testenv.RemoveBuilds()
	var bins []string
	for _, pkg := range []string{"jwks-issuer/functions/signer", "jwks-issuer/functions/rotator", plainSigner} {
		bin, err := testenv.BuildLambdaBinary(pkg)
		if err != nil {
			return nil, err
		}
		bins = append(bins, bin)
	}
	signerBin, rotatorBin, plainBin := bins[0], bins[1], bins[2]
	otherBin := ""
	if before != "" {
		dir, err := os.MkdirTemp("", "bench-before-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if otherBin, err = buildHere(filepath.Join(before, "functions", "signer"), filepath.Join(dir, "bootstrap")); err != nil {
			return nil, err
		}
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
	logf("%d cold starts of the signer and of the plain signer, alternately", runs)
	for i := range runs {
		// Which goes first alternates, so that neither always follows
		// the other's load on moto.
		order := []string{signerBin, plainBin}
		if otherBin != "" {
			order = append(order, otherBin)
		}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, bin := range order {
			// Invoked at once: the invocation waits for init, as a cold start does.
			ms, err := timeFirstToken(ctx, bin, env)
			if err != nil {
				return nil, err
			}
			switch bin {
			case signerBin:
				cs.toToken = append(cs.toToken, ms)
			case plainBin:
				cs.plain = append(cs.plain, ms)
			default:
				cs.other = append(cs.other, ms)
			}
		}
		// Init and first invocation apart.
		ready, first, err := timeInitThenInvoke(ctx, signerBin, env)
		if err != nil {
			return nil, err
		}
		cs.toReady, cs.firstInvk = append(cs.toReady, ready), append(cs.firstInvk, first)
		if ready, _, err = timeInitThenInvoke(ctx, plainBin, env); err != nil {
			return nil, err
		}
		cs.plainReady = append(cs.plainReady, ready)
		ems, err := timeGetSecret(ctx, moto, s.SecretARN)
		if err != nil {
			return nil, err
		}
		cs.emulator = append(cs.emulator, ems)
		logf("cold start %d/%d: %.1f ms to the first token, plain signer %.1f ms", i+1, runs, cs.toToken[i], cs.plain[i])
	}
	if cs.goInit, err = goInit(ctx, signerBin, env); err != nil {
		return nil, err
	}
	if cs.plainInit, err = goInit(ctx, plainBin, env); err != nil {
		return nil, err
	}
	if otherBin != "" {
		if cs.otherInit, err = goInit(ctx, otherBin, env); err != nil {
			return nil, err
		}
	}
	for _, custody := range []string{"secretsmanager", "kms", "parameterstore"} {
		logf("%s custody: counting the real signer's AWS calls per token", custody)
		calls, err := countCalls(ctx, moto, signerBin, rotatorBin, custody)
		if err != nil {
			return nil, fmt.Errorf("%s custody: %w", custody, err)
		}
		cs.calls = append(cs.calls, calls)
	}
	logf("KMS custody: a batch of kms:Sign calls against moto")
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
		return 0, fmt.Errorf("cold start of %s: %v %s (logs: %s)", bin, err, res.Payload, f.Logs())
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

// goInit is the median, over initStarts starts of bin, of the sum of its
// package initialisers.
func goInit(ctx context.Context, bin string, env []string) (initTrace, error) {
	const initStarts = 7
	type pkgInit struct {
		name string
		ms   float64
	}
	var totals []float64
	byPkg := map[string][]float64{}
	for range initStarts {
		f, err := testenv.StartFunctionProcess(bin, append(slices.Clone(env), "GODEBUG=inittrace=1"))
		if err != nil {
			return initTrace{}, err
		}
		err = f.WaitReady(ctx)
		f.Stop()
		if err != nil {
			return initTrace{}, err
		}
		var total float64
		sc := bufio.NewScanner(strings.NewReader(f.Logs()))
		for sc.Scan() {
			// init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs
			fs := strings.Fields(sc.Text())
			if len(fs) >= 7 && fs[0] == "init" && fs[6] == "clock," {
				if v, err := strconv.ParseFloat(fs[4], 64); err == nil {
					total += v
					byPkg[fs[1]] = append(byPkg[fs[1]], v)
				}
			}
		}
		totals = append(totals, total)
	}
	var all []pkgInit
	for name, v := range byPkg {
		all = append(all, pkgInit{name, median(v)})
	}
	slices.SortFunc(all, func(a, b pkgInit) int {
		switch {
		case a.ms > b.ms:
			return -1
		case a.ms < b.ms:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	tr := initTrace{ms: median(totals)}
	for _, p := range all[:min(5, len(all))] {
		tr.top = append(tr.top, fmt.Sprintf("%s=%.2f", p.name, p.ms))
	}
	return tr, nil
}

// custodyCalls is what the real signer binary calls per token in one
// custody, counted by an endpoint in front of moto (stack.Recorder): the
// first token of a cold start (the key is read during init), warm single
// tokens, and a warm batch.
type custodyCalls struct {
	custody                string
	first, warm, batch     map[string]float64
	warmTokens, batchItems int
}

// countCalls deploys a stack in custody, rotates a key in, starts the
// signer again behind a recorder and issues tokens.
func countCalls(ctx context.Context, moto *testenv.Moto, signerBin, rotatorBin, custody string) (custodyCalls, error) {
	env := map[string]string{"ACTIVATION_GRACE_SECONDS": "0", "JWKS_MAX_AGE_SECONDS": "0", "KEY_CUSTODY": custody}
	switch custody {
	case "kms":
		env["KMS_DELETION_WINDOW_DAYS"] = "7"
		env["KMS_KEY_TAG"] = "bench-" + stack.NewToken()
	case "parameterstore":
		env["SIGNING_KEY_PARAMETER"] = "/jwks-issuer/bench-" + stack.NewToken() + "/signing-key"
	}
	s, err := stack.New(ctx, moto, signerBin, rotatorBin, env)
	if err != nil {
		return custodyCalls{}, err
	}
	defer s.Stop()
	if err := s.Rotate(ctx, stack.NewToken()); err != nil {
		return custodyCalls{}, fmt.Errorf("rotation: %w", err)
	}
	rec, err := stack.StartRecorder(moto.Endpoint)
	if err != nil {
		return custodyCalls{}, err
	}
	defer rec.Close()
	if err := s.RestartSigner(map[string]string{"AWS_ENDPOINT_URL": rec.URL}); err != nil {
		return custodyCalls{}, err
	}
	r := custodyCalls{custody: custody, warmTokens: 200, batchItems: 100}
	if _, err := s.Sign(ctx, perf.Payload); err != nil {
		return custodyCalls{}, err
	}
	r.first = perToken(rec.Take(), 1)
	for range r.warmTokens {
		if _, err := s.Sign(ctx, perf.Payload); err != nil {
			return custodyCalls{}, err
		}
	}
	r.warm = perToken(rec.Take(), r.warmTokens)
	out, err := stack.Invoke(ctx, s.Signer, string(perf.BatchPayload(r.batchItems)))
	if err != nil || !strings.HasPrefix(string(out), `{"tokens":[`) {
		return custodyCalls{}, fmt.Errorf("batch: %v %.200s", err, out)
	}
	r.batch = perToken(rec.Take(), r.batchItems)
	return r, nil
}

// services names the service of each X-Amz-Target prefix.
var services = map[string]string{"secretsmanager": "secretsmanager", "AmazonSSM": "ssm", "TrentService": "kms"}

// perToken sums calls by service and divides by the tokens issued.
func perToken(n map[string]int, tokens int) map[string]float64 {
	out := map[string]float64{"secretsmanager": 0, "kms": 0, "ssm": 0}
	for op, v := range n {
		prefix, _, _ := strings.Cut(op, ".")
		svc, ok := services[prefix]
		if !ok {
			svc = "other"
		}
		out[svc] += float64(v) / float64(tokens)
	}
	return out
}

func (r custodyCalls) print() {
	fmt.Printf("aws_calls_per_token custody=%s phase=first_token %s\n", r.custody, formatCalls(r.first))
	fmt.Printf("aws_calls_per_token custody=%s phase=warm %s\n", r.custody, formatCalls(r.warm))
	fmt.Printf("aws_calls_per_token custody=%s phase=warm_batch%d %s\n", r.custody, r.batchItems, formatCalls(r.batch))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func formatCalls(m map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%.3f", k, m[k]))
	}
	return strings.Join(parts, " ")
}
