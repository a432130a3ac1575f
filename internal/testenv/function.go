package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultFunctionName is the AWS_LAMBDA_FUNCTION_NAME a Function runs
// under unless the caller's environment overrides it.
const DefaultFunctionName = "test"

// Function is a Lambda bootstrap binary running as a child process against
// a Runtime of its own.
type Function struct {
	rt      *Runtime
	cmd     *exec.Cmd
	logs    *logBuffer
	started time.Time

	exited  chan struct{} // closed once the process has been reaped
	exitErr error         // written before exited is closed

	stopOnce sync.Once
}

// StartFunction starts the Lambda bootstrap binary at binaryPath for the
// calling test and stops it when the test finishes, logging its output if
// the test failed. See StartFunctionProcess for the environment it gets.
func StartFunction(t testing.TB, binaryPath string, env []string) *Function {
	t.Helper()
	f, err := StartFunctionProcess(binaryPath, env)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			t.Logf("output of lambda %s:\n%s", binaryPath, tailLines(f.Logs(), 200))
		}
	})
	return f
}

// StartFunctionProcess starts the Lambda bootstrap binary at binaryPath
// and returns as soon as it has been executed, without waiting for it to
// initialise (see WaitReady), so that callers can time cold starts. The
// caller must call Stop.
//
// The process does not inherit the test's environment: like a real Lambda
// sandbox it gets PATH and HOME, the variables the Lambda service sets,
// and env, whose entries take precedence. The exception is
// AWS_LAMBDA_RUNTIME_API, which always points at the Function's own
// Runtime. If env sets AWS_LAMBDA_FUNCTION_NAME or AWS_REGION, the
// reported function ARN follows them.
func StartFunctionProcess(binaryPath string, env []string) (*Function, error) {
	bin, err := filepath.Abs(binaryPath)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	rt, err := NewRuntimeServer()
	if err != nil {
		return nil, err
	}

	name, ok := lookupEnv(env, "AWS_LAMBDA_FUNCTION_NAME")
	if !ok {
		name = DefaultFunctionName
	}
	region, ok := lookupEnv(env, "AWS_REGION")
	if !ok {
		region = "us-east-1"
	}
	rt.SetFunctionARN(fmt.Sprintf("arn:aws:lambda:%s:123456789012:function:%s", region, name))

	taskRoot := filepath.Dir(bin)
	var full []string
	for _, k := range []string{"PATH", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			full = append(full, k+"="+v)
		}
	}
	full = append(full,
		"AWS_LAMBDA_FUNCTION_NAME="+name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+newLogStreamName(),
		"_HANDLER=bootstrap",
		"LAMBDA_TASK_ROOT="+taskRoot,
		// Lambda runs functions in UTC, and code formatting local times
		// should see the same here as in production.
		"TZ=:UTC",
	)
	for _, kv := range env {
		// Entries without '=' mean nothing to exec; drop them.
		if k, v, ok := strings.Cut(kv, "="); ok {
			full = setEnv(full, k, v)
		}
	}
	full = setEnv(full, "AWS_LAMBDA_RUNTIME_API", rt.Addr())

	logs := &logBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = full
	cmd.Dir = taskRoot
	cmd.Stdout = logs
	cmd.Stderr = logs
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)

	f := &Function{rt: rt, cmd: cmd, logs: logs, exited: make(chan struct{})}
	f.started = time.Now()
	if err := cmd.Start(); err != nil {
		rt.Close()
		return nil, fmt.Errorf("testenv: starting lambda %s: %w", bin, err)
	}
	go func() {
		err := cmd.Wait()
		f.exitErr = err
		close(f.exited)
		// Turn the death into an Invoke error at once, instead of leaving
		// callers to wait out their context or the function timeout.
		status := "exit status 0"
		if err != nil {
			status = err.Error()
		}
		rt.fail(fmt.Errorf("testenv: lambda process exited (%s); output:\n%s", status, tailLines(logs.String(), 30)))
	}()
	return f, nil
}

// Runtime returns the Runtime API the function talks to, e.g. to change
// its timeout.
func (f *Function) Runtime() *Runtime { return f.rt }

// StartedAt returns the time just before the process was executed, the
// origin for cold-start measurements.
func (f *Function) StartedAt() time.Time { return f.started }

// WaitReady returns once the function has polled for its first invocation,
// or with an error if it exits first or ctx ends.
func (f *Function) WaitReady(ctx context.Context) error {
	return f.rt.WaitReady(ctx)
}

// Invoke sends payload to the function and waits for the outcome; see
// Runtime.Invoke. It returns an error promptly if the process exits
// before answering.
func (f *Function) Invoke(ctx context.Context, payload []byte) (Result, error) {
	return f.rt.Invoke(ctx, payload)
}

// Logs returns everything the process has written to stdout and stderr so
// far.
func (f *Function) Logs() string { return f.logs.String() }

// Exited reports whether the process has terminated.
func (f *Function) Exited() bool {
	select {
	case <-f.exited:
		return true
	default:
		return false
	}
}

// Stop kills the process (and anything it spawned), waits for it, and
// shuts down its Runtime. It is safe to call more than once.
func (f *Function) Stop() {
	f.stopOnce.Do(func() {
		_ = killProcessGroup(f.cmd)
		select {
		case <-f.exited:
		case <-time.After(stopTimeout):
		}
		f.rt.Close()
	})
}

// newLogStreamName mimics Lambda's "YYYY/MM/DD/[$LATEST]<hex>" stream names.
func newLogStreamName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + hex.EncodeToString(b[:])
}
