package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func invoke(t *testing.T, f *Function, payload string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := f.Invoke(ctx, []byte(payload))
	if err != nil {
		t.Fatalf("Invoke(%s): %v", payload, err)
	}
	return res
}

func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("payload %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("payload = %s, want %s", gb, wb)
	}
}

func TestFunctionRoundTrip(t *testing.T) {
	t.Parallel()
	bin := BuildLambda(t, "jwks-issuer/internal/testenv/internal/echolambda")
	// The directory form names the same package, so it must hit the cache.
	if again := BuildLambda(t, "./internal/echolambda"); again != bin {
		t.Errorf("BuildLambda(./internal/echolambda) = %q, want cached %q", again, bin)
	}

	f := StartFunction(t, bin, []string{"AWS_LAMBDA_FUNCTION_NAME=echo", "EXTRA=caller"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	res := invoke(t, f, `{"hello":"world"}`)
	if res.Err != nil {
		t.Fatalf("unexpected function error: %v", res.Err)
	}
	assertJSON(t, res.Payload, `{"echo":{"hello":"world"}}`)

	res = invoke(t, f, `{"fail":true}`)
	if res.Err == nil {
		t.Fatalf("expected a function error, got payload %s", res.Payload)
	}
	if res.Err.Message != "boom" {
		t.Errorf("error message = %q, want %q (error: %v)", res.Err.Message, "boom", res.Err)
	}
	var asErr error = res.Err
	if fe := (*FunctionError)(nil); !errors.As(asErr, &fe) || fe.Type == "" {
		t.Errorf("FunctionError %#v: want a non-empty Type", res.Err)
	}

	// A handler error must not take the function down.
	res = invoke(t, f, `[1,2]`)
	if res.Err != nil {
		t.Fatalf("unexpected function error after a failed invocation: %v", res.Err)
	}
	assertJSON(t, res.Payload, `{"echo":[1,2]}`)

	for name, want := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":    "echo",
		"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
		"EXTRA":                       "caller",
		"GOFLAGS":                     "", // the test's own environment must not leak
	} {
		res := invoke(t, f, fmt.Sprintf(`{"env":%q}`, name))
		assertJSON(t, res.Payload, fmt.Sprintf(`{"env":%q}`, want))
	}
	if f.Exited() {
		t.Fatalf("function exited unexpectedly; logs:\n%s", f.Logs())
	}
}

func TestFunctionExitFailsInvoke(t *testing.T) {
	t.Parallel()
	f := StartFunction(t, BuildLambda(t, "./internal/echolambda"), nil)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := f.Invoke(ctx, []byte(`{"exit":true}`))
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("Invoke on a dying function: err = %v, want a process-exit error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Invoke took %v to notice the exit", d)
	}
	if !f.Exited() {
		t.Error("Exited() = false after the process died")
	}
	// Later invocations must fail at once rather than wait for a poller.
	if _, err := f.Invoke(ctx, []byte(`{}`)); err == nil {
		t.Error("Invoke after exit succeeded")
	}
}

// pollNext acts as a runtime client's GET /next.
func pollNext(t *testing.T, r *Runtime) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + r.Addr() + "/2018-06-01/runtime/invocation/next")
	if err != nil {
		t.Fatalf("GET next: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func post(t *testing.T, r *Runtime, path, body string, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.Addr()+"/2018-06-01/runtime"+path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRuntimeProtocol(t *testing.T) {
	t.Parallel()
	r := NewRuntime(t)
	r.SetTimeout(5 * time.Second)

	type outcome struct {
		res Result
		err error
	}
	invokeAsync := func(payload string) <-chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := r.Invoke(ctx, []byte(payload))
			ch <- outcome{res, err}
		}()
		return ch
	}

	// Success, with the headers a runtime client depends on.
	done := invokeAsync(`{"n":1}`)
	resp, body := pollNext(t, r)
	if resp.StatusCode != http.StatusOK || string(body) != `{"n":1}` {
		t.Fatalf("next = %d %q", resp.StatusCode, body)
	}
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	deadline, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
	if err != nil {
		t.Fatalf("bad deadline header: %v", err)
	}
	if left := time.Until(time.UnixMilli(deadline)); left < 3*time.Second || left > 6*time.Second {
		t.Errorf("deadline %v away, want about 5s", left)
	}
	if got := resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"); got != DefaultFunctionARN {
		t.Errorf("function ARN = %q", got)
	}
	if got := resp.Header.Get("Lambda-Runtime-Trace-Id"); !strings.HasPrefix(got, "Root=1-") {
		t.Errorf("trace id = %q", got)
	}
	if code := post(t, r, "/invocation/"+id+"/response", `"ok"`, nil); code != http.StatusAccepted {
		t.Fatalf("response status = %d", code)
	}
	if o := <-done; o.err != nil || string(o.res.Payload) != `"ok"` || o.res.Err != nil {
		t.Fatalf("Invoke = %+v, %v", o.res, o.err)
	}
	if code := post(t, r, "/invocation/"+id+"/response", `"again"`, nil); code != http.StatusBadRequest {
		t.Errorf("duplicate response status = %d, want 400", code)
	}

	// Function error, with the type only in the header.
	done = invokeAsync(`{}`)
	resp, _ = pollNext(t, r)
	id = resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	hdr := http.Header{"Lambda-Runtime-Function-Error-Type": {"Custom.Kind"}}
	if code := post(t, r, "/invocation/"+id+"/error", `{"errorMessage":"bad"}`, hdr); code != http.StatusAccepted {
		t.Fatalf("error status = %d", code)
	}
	o := <-done
	if o.err != nil || o.res.Err == nil || o.res.Err.Message != "bad" || o.res.Err.Type != "Custom.Kind" {
		t.Fatalf("Invoke = %+v (err %v), %v", o.res, o.res.Err, o.err)
	}

	// An init error fails waiting and future invocations immediately.
	done = invokeAsync(`{}`)
	if code := post(t, r, "/init/error", `{"errorMessage":"no config","errorType":"Runtime.Init"}`, nil); code != http.StatusAccepted {
		t.Fatalf("init error status = %d", code)
	}
	var fe *FunctionError
	if o := <-done; !errors.As(o.err, &fe) || fe.Message != "no config" {
		t.Fatalf("Invoke after init error = %v, want the init error", o.err)
	}
	if ie := r.InitError(); ie == nil || ie.Type != "Runtime.Init" {
		t.Errorf("InitError() = %v", ie)
	}
}

func TestRuntimeCloseUnblocksNext(t *testing.T) {
	t.Parallel()
	r, err := NewRuntimeServer()
	if err != nil {
		t.Fatal(err)
	}
	polled := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + r.Addr() + "/2018-06-01/runtime/invocation/next")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				err = errors.New("got an invocation from a closed runtime")
			}
		}
		polled <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	r.Close()
	select {
	case err := <-polled:
		if err != nil && strings.Contains(err.Error(), "closed runtime") {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GET /next still blocked after Close")
	}
	if _, err := r.Invoke(ctx, nil); !errors.Is(err, ErrRuntimeClosed) {
		t.Errorf("Invoke after Close = %v, want ErrRuntimeClosed", err)
	}
}

func TestMoto(t *testing.T) {
	t.Parallel()
	m := StartMoto(t)

	resp, err := http.Get(m.Endpoint + "/moto-api/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto dashboard status = %s", resp.Status)
	}
	if env := strings.Join(m.Env(), "\n"); !strings.Contains(env, "AWS_ENDPOINT_URL="+m.Endpoint+"\n") {
		t.Errorf("Env() lacks the endpoint:\n%s", env)
	}
	m.Reset(t)

	m.Stop()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(m.Port), time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("port %d still accepts connections after Stop", m.Port)
	}
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("FreePort returned %d, which cannot be bound: %v", p, err)
	}
	l.Close()
}
