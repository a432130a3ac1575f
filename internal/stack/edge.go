package stack

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Edge serves a stack's bucket the way CloudFront does: a GET of an object
// key answers its body with its Content-Type, Cache-Control and ETag, and a
// missing key is a 404. It listens before the stack starts, so that its
// address can be the stack's issuer (ISSUER_URL).
type Edge struct {
	// URL is http://127.0.0.1:PORT.
	URL   string
	srv   *http.Server
	stack atomic.Pointer[Stack]
}

// StartEdge listens on a free loopback port.
func StartEdge() (*Edge, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Edge{URL: "http://" + ln.Addr().String()}
	e.srv = &http.Server{Handler: http.HandlerFunc(e.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()
	return e, nil
}

// Front makes the edge serve s's bucket.
func (e *Edge) Front(s *Stack) { e.stack.Store(s) }

// Close stops serving.
func (e *Edge) Close() { _ = e.srv.Close() }

func (e *Edge) serve(w http.ResponseWriter, r *http.Request) {
	s := e.stack.Load()
	if r.Method != http.MethodGet || s == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	out, err := s.S3.GetObject(r.Context(), &s3.GetObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(strings.TrimPrefix(r.URL.Path, "/")),
	})
	var missing *s3types.NoSuchKey
	if errors.As(err, &missing) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer out.Body.Close()
	w.Header().Set("Content-Type", aws.ToString(out.ContentType))
	w.Header().Set("Cache-Control", aws.ToString(out.CacheControl))
	w.Header().Set("ETag", aws.ToString(out.ETag))
	_, _ = io.Copy(w, out.Body)
}
