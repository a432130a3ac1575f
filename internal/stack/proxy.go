package stack

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// Recorder is an endpoint in front of moto that counts the AWS operations a
// process sends, by their X-Amz-Target (the JSON protocols of Secrets
// Manager, Parameter Store and KMS name the operation there, e.g.
// "secretsmanager.GetSecretValue" or "AmazonSSM.GetParameter"). Point a
// function's AWS_ENDPOINT_URL at URL to count what the real binary calls.
type Recorder struct {
	URL string
	srv *http.Server

	mu sync.Mutex
	n  map[string]int
}

// StartRecorder listens on a free loopback port and forwards to endpoint.
func StartRecorder(endpoint string) (*Recorder, error) {
	target, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Recorder{URL: "http://" + ln.Addr().String(), n: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	r.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		op := req.Header.Get("X-Amz-Target")
		if op == "" {
			op = req.Method + " " + req.URL.Path // S3 and the other REST protocols
		}
		r.mu.Lock()
		r.n[op]++
		r.mu.Unlock()
		proxy.ServeHTTP(w, req)
	})}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Take returns the counts since the last Take and starts again from zero.
func (r *Recorder) Take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.n
	r.n = map[string]int{}
	return n
}

// Close stops forwarding.
func (r *Recorder) Close() { _ = r.srv.Close() }
