package testenv

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrMotoNotFound is returned by StartMotoProcess when moto_server is not
// on PATH, so that a TestMain can tell a missing tool from a broken one.
var ErrMotoNotFound = errors.New("moto_server not found on PATH; install it with `pip install 'moto[server]'`")

const (
	// motoStartTimeout is generous because a cold Python start on a loaded
	// 2-core CI machine (go test ./... runs packages in parallel) can take
	// several seconds; a warm start takes under one.
	motoStartTimeout = 20 * time.Second
	// motoBindAttempts bounds retries of the FreePort race: the port is free
	// when chosen but another process may take it before moto binds it.
	motoBindAttempts = 3
	// motoLogLimit keeps the request log of long test runs from growing
	// without bound; only the tail is ever useful.
	motoLogLimit = 64 << 10
	// stopTimeout bounds how long Stop waits for a SIGKILLed process to be
	// reaped, so that a wedged child cannot hang test cleanup forever.
	stopTimeout = 10 * time.Second
)

// errPortInUse marks a start attempt that lost the race for its port and
// is therefore worth retrying on another one.
var errPortInUse = errors.New("port already in use")

// Moto is a running moto_server process listening on 127.0.0.1.
type Moto struct {
	// Endpoint is the server's base URL, e.g. "http://127.0.0.1:40123".
	Endpoint string
	// Port is the TCP port the server listens on.
	Port int

	cmd    *exec.Cmd
	output *logBuffer

	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // written before exited is closed

	stopOnce sync.Once
}

// StartMoto starts a fresh moto_server for the calling test and stops it
// when the test finishes. It fails the test if moto_server is not
// installed or does not come up.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	m, err := StartMotoProcess()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// StartMotoProcess starts moto_server on a free port and waits until it
// answers HTTP requests. The caller must call Stop.
func StartMotoProcess() (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, ErrMotoNotFound
	}
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		m, err := startMotoOnPort(bin, port)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == motoBindAttempts {
			return nil, err
		}
	}
}

func startMotoOnPort(bin string, port int) (*Moto, error) {
	out := &logBuffer{limit: motoLogLimit}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	// Unbuffered output makes the tail we report on failure complete
	// rather than stuck in Python's stdout buffer.
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.Stdout = out
	cmd.Stderr = out
	// If a descendant outlives the killed group leader while still holding
	// our pipes, don't let Wait block on them forever.
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto_server: %w", err)
	}

	m := &Moto{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		Port:     port,
		cmd:      cmd,
		output:   out,
		exited:   make(chan struct{}),
	}
	go func() {
		m.waitErr = cmd.Wait()
		close(m.exited)
	}()

	if err := m.waitReady(); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// waitReady polls the moto dashboard until it answers, the process dies,
// or motoStartTimeout passes.
func (m *Moto) waitReady() error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(motoStartTimeout)
	for {
		// Check for exit before trusting an answer: if we lost the port
		// race, whoever won it (possibly another package's moto) answers
		// too, and only our process's death tells the two apart.
		select {
		case <-m.exited:
			return m.exitError()
		default:
		}
		resp, err := client.Get(m.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("moto_server on port %d not ready after %v; output:\n%s",
				m.Port, motoStartTimeout, tailLines(m.output.String(), 30))
		}
		select {
		case <-m.exited:
			return m.exitError()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *Moto) exitError() error {
	out := m.output.String()
	err := fmt.Errorf("moto_server exited during startup (%v); output:\n%s", m.waitErr, tailLines(out, 30))
	if strings.Contains(strings.ToLower(out), "address already in use") {
		return fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return err
}

// Env returns the environment a child process (or an SDK configured from
// the environment) needs to talk to this server instead of real AWS. The
// dummy credentials keep the SDK from looking further afield, and the
// disabled metadata service avoids slow IMDS timeouts.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_SESSION_TOKEN=testing",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Reset wipes all state in the server, so that tests sharing one server
// (e.g. started from TestMain) do not see each other's resources.
func (m *Moto) Reset(t testing.TB) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(m.Endpoint+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("testenv: resetting moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: resetting moto: unexpected status %s", resp.Status)
	}
}

// Logs returns the tail of the server's combined stdout and stderr.
func (m *Moto) Logs() string {
	return m.output.String()
}

// Stop kills the server and everything it spawned, and waits for it to be
// reaped so that its port is free again when Stop returns. It is safe to
// call more than once.
func (m *Moto) Stop() {
	m.stopOnce.Do(func() {
		_ = killProcessGroup(m.cmd)
		select {
		case <-m.exited:
		case <-time.After(stopTimeout):
		}
	})
}
