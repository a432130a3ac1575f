package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Runtime API wire names, from
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html.
const (
	runtimeAPIPrefix = "/2018-06-01/runtime"

	headerRequestID   = "Lambda-Runtime-Aws-Request-Id"
	headerDeadlineMs  = "Lambda-Runtime-Deadline-Ms"
	headerFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	headerTraceID     = "Lambda-Runtime-Trace-Id"
	headerErrorType   = "Lambda-Runtime-Function-Error-Type"
	// A streaming response that fails midway cannot change its status, so
	// aws-lambda-go reports the failure in these trailers instead.
	trailerErrorType = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody = "Lambda-Runtime-Function-Error-Body"
)

const (
	// DefaultTimeout is the function timeout a new Runtime advertises
	// through Lambda-Runtime-Deadline-Ms.
	DefaultTimeout = 30 * time.Second
	// DefaultFunctionARN is the invoked function ARN a new Runtime reports.
	DefaultFunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:test"

	// invokeGrace is how long past the function's deadline Invoke keeps
	// waiting, to absorb scheduling jitter on a busy machine before
	// declaring a timeout the function itself could not have seen.
	invokeGrace = 2 * time.Second
)

// ErrRuntimeClosed is returned by Invoke once the Runtime has been closed.
var ErrRuntimeClosed = errors.New("testenv: lambda runtime API closed")

// FunctionError is an error reported by the function itself, through the
// invocation error (or init error) endpoint.
type FunctionError struct {
	Message string
	Type    string
	// Body is the raw error document as posted, which for aws-lambda-go
	// includes the stack trace of a panic.
	Body []byte
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// Result is the outcome of an invocation that the function completed.
// Exactly one of Payload and Err is meaningful.
type Result struct {
	Payload []byte
	Err     *FunctionError
}

// invocation is one queued or in-flight Invoke call.
type invocation struct {
	id      string
	payload []byte

	once   sync.Once
	done   chan struct{} // closed by complete
	result Result        // written before done is closed
}

func (inv *invocation) complete(r Result) bool {
	completed := false
	inv.once.Do(func() {
		inv.result = r
		close(inv.done)
		completed = true
	})
	return completed
}

// Runtime is a fake of the Lambda Runtime API (2018-06-01) that a Lambda
// runtime client, such as aws-lambda-go's, can poll for invocations.
// Tests push invocations in with Invoke.
type Runtime struct {
	ln  net.Listener
	srv *http.Server

	// queue is unbuffered on purpose: a send completes exactly when a
	// GET /next takes the invocation, which is the moment the function's
	// deadline clock starts, and an abandoned Invoke leaves nothing behind.
	queue chan *invocation

	readyOnce sync.Once
	ready     chan struct{} // closed on the first GET /next

	closeOnce sync.Once
	closed    chan struct{}

	failOnce sync.Once
	failed   chan struct{} // closed by fail
	failErr  error         // written before failed is closed

	mu       sync.Mutex
	timeout  time.Duration
	arn      string
	inflight map[string]*invocation // dispatched, awaiting response/error
	initErr  *FunctionError
}

// NewRuntime starts a Runtime for the calling test and closes it when the
// test finishes.
func NewRuntime(t testing.TB) *Runtime {
	t.Helper()
	r, err := NewRuntimeServer()
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// NewRuntimeServer starts a Runtime on a free port of 127.0.0.1. The
// caller must call Close.
func NewRuntimeServer() (*Runtime, error) {
	// Keep the listener we bind instead of going through FreePort: nothing
	// else needs to bind this port, so there is no race to lose.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: listening for the lambda runtime API: %w", err)
	}
	r := &Runtime{
		ln:       ln,
		queue:    make(chan *invocation),
		ready:    make(chan struct{}),
		closed:   make(chan struct{}),
		failed:   make(chan struct{}),
		timeout:  DefaultTimeout,
		arn:      DefaultFunctionARN,
		inflight: make(map[string]*invocation),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimeAPIPrefix+"/invocation/next", r.handleNext)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"/invocation/{id}/response", r.handleResponse)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"/invocation/{id}/error", r.handleError)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"/init/error", r.handleInitError)
	// No write timeout: GET /next legitimately blocks until the next
	// Invoke, however long the test takes to issue it.
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Addr returns the host:port the API listens on, the value for
// AWS_LAMBDA_RUNTIME_API.
func (r *Runtime) Addr() string {
	return r.ln.Addr().String()
}

// SetTimeout sets the function timeout used for deadlines of invocations
// dispatched from now on.
func (r *Runtime) SetTimeout(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timeout = d
}

// SetFunctionARN sets the Lambda-Runtime-Invoked-Function-Arn reported
// for invocations dispatched from now on.
func (r *Runtime) SetFunctionARN(arn string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.arn = arn
}

// InitError returns the error the function posted to /init/error, if any.
func (r *Runtime) InitError() *FunctionError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.initErr
}

// WaitReady returns once a runtime client has polled for its first
// invocation, i.e. the function finished initialising. It returns early
// with an error if ctx ends, the runtime is closed, or the function failed
// (init error, or process exit when owned by a Function).
func (r *Runtime) WaitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-r.failed:
		return r.failErr
	case <-r.closed:
		return ErrRuntimeClosed
	case <-ctx.Done():
		return fmt.Errorf("testenv: waiting for the function to poll for invocations: %w", context.Cause(ctx))
	}
}

// Invoke queues payload as an invocation and waits for the function to
// answer it. A function that returns an error yields a Result with Err
// set and a nil error; the error return is reserved for invocations that
// did not complete: ctx ended, the function exceeded its timeout, failed
// to initialise, died, or the runtime was closed.
func (r *Runtime) Invoke(ctx context.Context, payload []byte) (Result, error) {
	// Fail fast on a dead function, rather than racing the select below
	// against a runtime client that will never come back.
	select {
	case <-r.failed:
		return Result{}, r.failErr
	default:
	}

	inv := &invocation{id: newRequestID(), payload: payload, done: make(chan struct{})}
	select {
	case r.queue <- inv:
	case <-r.failed:
		return Result{}, r.failErr
	case <-r.closed:
		return Result{}, ErrRuntimeClosed
	case <-ctx.Done():
		return Result{}, fmt.Errorf("testenv: invocation was not picked up by the function: %w", context.Cause(ctx))
	}

	// Once dispatched the function has its timeout to answer; real Lambda
	// would kill it afterwards, so we stop waiting too.
	limit := r.currentTimeout() + invokeGrace
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var err error
	select {
	case <-inv.done:
		return inv.result, nil
	case <-r.failed:
		err = r.failErr
	case <-r.closed:
		err = ErrRuntimeClosed
	case <-ctx.Done():
		err = fmt.Errorf("testenv: invocation %s: %w", inv.id, context.Cause(ctx))
	case <-timer.C:
		err = fmt.Errorf("testenv: invocation %s: no response within %v", inv.id, limit)
	}
	// A function that answers and then exits (as aws-lambda-go does after
	// reporting a panic) makes both cases ready at once; the answer is the
	// more useful outcome.
	select {
	case <-inv.done:
		return inv.result, nil
	default:
		return Result{}, err
	}
}

// Close shuts the API down, unblocking pending GET /next polls and Invoke
// calls. It is safe to call more than once.
func (r *Runtime) Close() {
	r.closeOnce.Do(func() {
		close(r.closed)
		_ = r.srv.Close()
	})
}

// fail makes every pending and future Invoke return err. The first
// failure wins, since later ones (say, the process exiting after an init
// error) are usually consequences of it.
func (r *Runtime) fail(err error) {
	r.failOnce.Do(func() {
		r.failErr = err
		close(r.failed)
	})
}

func (r *Runtime) currentTimeout() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timeout
}

func (r *Runtime) handleNext(w http.ResponseWriter, req *http.Request) {
	r.readyOnce.Do(func() { close(r.ready) })

	var inv *invocation
	select {
	case inv = <-r.queue:
	case <-req.Context().Done():
		return
	case <-r.closed:
		writeStatus(w, http.StatusServiceUnavailable, "RuntimeClosed", "the runtime API is shutting down")
		return
	}

	r.mu.Lock()
	// Register before answering, so the response POST can never arrive
	// for an id we do not know yet.
	r.inflight[inv.id] = inv
	deadline := time.Now().Add(r.timeout)
	arn := r.arn
	r.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(headerRequestID, inv.id)
	h.Set(headerDeadlineMs, strconv.FormatInt(deadline.UnixMilli(), 10))
	h.Set(headerFunctionARN, arn)
	h.Set(headerTraceID, newTraceID())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

func (r *Runtime) handleResponse(w http.ResponseWriter, req *http.Request) {
	inv, ok := r.takeInflight(w, req)
	if !ok {
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		// The function will retry nothing; fail the invocation rather than
		// leave Invoke waiting for its timeout.
		inv.complete(Result{Err: &FunctionError{Type: "Runtime.TransportError", Message: err.Error()}})
		writeStatus(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	// Trailers are only populated once the body has been read to EOF.
	if typ := req.Trailer.Get(trailerErrorType); typ != "" {
		fe := &FunctionError{Type: typ}
		if raw, err := base64.StdEncoding.DecodeString(req.Trailer.Get(trailerErrorBody)); err == nil {
			fe = parseFunctionError(raw, typ)
		}
		inv.complete(Result{Err: fe})
	} else {
		inv.complete(Result{Payload: body})
	}
	writeStatus(w, http.StatusAccepted, "", "")
}

func (r *Runtime) handleError(w http.ResponseWriter, req *http.Request) {
	inv, ok := r.takeInflight(w, req)
	if !ok {
		return
	}
	body, _ := io.ReadAll(req.Body)
	inv.complete(Result{Err: parseFunctionError(body, req.Header.Get(headerErrorType))})
	writeStatus(w, http.StatusAccepted, "", "")
}

func (r *Runtime) handleInitError(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	fe := parseFunctionError(body, req.Header.Get(headerErrorType))
	r.mu.Lock()
	if r.initErr == nil {
		r.initErr = fe
	}
	r.mu.Unlock()
	r.fail(fmt.Errorf("testenv: function init failed: %w", fe))
	writeStatus(w, http.StatusAccepted, "", "")
}

// takeInflight removes and returns the dispatched invocation named in the
// URL, answering the request itself if there is none: a second response
// for the same id is as much a protocol error as an unknown id.
func (r *Runtime) takeInflight(w http.ResponseWriter, req *http.Request) (*invocation, bool) {
	id := req.PathValue("id")
	r.mu.Lock()
	inv, ok := r.inflight[id]
	delete(r.inflight, id)
	r.mu.Unlock()
	if !ok {
		writeStatus(w, http.StatusBadRequest, "InvalidRequestID", "unknown or already completed request id "+strconv.Quote(id))
	}
	return inv, ok
}

// parseFunctionError decodes the standard Lambda error document
// ({"errorMessage": ..., "errorType": ...}). Runtimes are free to post
// anything, so a body that is not such a document becomes the message.
func parseFunctionError(body []byte, headerType string) *FunctionError {
	var doc struct {
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}
	fe := &FunctionError{Body: body}
	if err := json.Unmarshal(body, &doc); err == nil {
		fe.Message, fe.Type = doc.Message, doc.Type
	} else {
		fe.Message = string(body)
	}
	if fe.Type == "" {
		fe.Type = headerType
	}
	return fe
}

// writeStatus answers in the shape the real Runtime API uses: a status
// document on success, an error document otherwise.
func writeStatus(w http.ResponseWriter, code int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	var doc any = map[string]string{"status": "OK"}
	if errType != "" {
		doc = map[string]string{"errorType": errType, "errorMessage": msg}
	}
	_ = json.NewEncoder(w).Encode(doc)
}

// newRequestID returns a random UUIDv4, the format of real request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newTraceID returns an X-Ray trace header in the format Lambda sends, so
// that code parsing it sees realistic input.
func newTraceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), h[:24], h[24:])
}
