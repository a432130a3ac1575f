package testenv

import (
	"fmt"
	"net"
	"strings"
	"sync"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
//
// The port is released before returning so that another process can bind
// it, which leaves a small window in which someone else may grab it too;
// callers that start servers on it should be prepared to retry.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logBuffer collects a child process's output. os/exec writes to it from
// its own goroutines while tests read it, hence the mutex.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
	// limit, if positive, bounds memory for chatty long-lived processes
	// (moto logs every request): only roughly the last limit bytes are kept.
	limit int
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	// Trim only once we are well past the limit so that trimming, which
	// copies, stays amortised O(1) per byte.
	if l.limit > 0 && len(l.b) > 2*l.limit {
		l.b = append(l.b[:0], l.b[len(l.b)-l.limit:]...)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// tailLines returns at most the last n lines of s, for error messages that
// should point at the cause without drowning the reader.
func tailLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "(no output)"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// setEnv returns env with key set to value, replacing any earlier
// assignment so that the result has no duplicate keys.
func setEnv(env []string, key, value string) []string {
	prefix := key + "="
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return append(out, prefix+value)
}

// lookupEnv returns the value of the last assignment to key in env, which
// is the one a child process would see.
func lookupEnv(env []string, key string) (string, bool) {
	prefix := key + "="
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], prefix); ok {
			return v, true
		}
	}
	return "", false
}
