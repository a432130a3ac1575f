// Package verifytest is an issuer for tests of verifiers: signing keys of
// every algorithm pkg/verify accepts, tokens signed with them, and an HTTP
// origin serving the discovery document and the key set with the
// Cache-Control, status and timing a test asks for, counting the fetches.
package verifytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
)

// Key is a signing key of an issuer.
type Key struct {
	Kid, Alg string
	Signer   crypto.Signer
}

// NewKey makes a key for alg: ES256, ES384, ES512, RS256, RS384, RS512,
// PS256, PS384, PS512 or EdDSA. RSA keys are 2048 bits.
func NewKey(alg, kid string) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("verifytest: no key for %q", alg)
	}
	if err != nil {
		return nil, err
	}
	return &Key{Kid: kid, Alg: alg, Signer: priv}, nil
}

// As is the same key pair under another alg or kid (for tokens that lie
// about either).
func (k *Key) As(alg, kid string) *Key { return &Key{Kid: kid, Alg: alg, Signer: k.Signer} }

// B64 is base64url without padding.
func B64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWK is the public JWK, with alg unless noAlg.
func (k *Key) JWK(noAlg bool) map[string]any {
	m := map[string]any{"kid": k.Kid, "use": "sig"}
	if !noAlg {
		m["alg"] = k.Alg
	}
	switch p := k.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		raw, _ := p.Bytes()
		m["kty"], m["crv"] = "EC", p.Curve.Params().Name
		m["x"], m["y"] = B64(raw[1:1+size]), B64(raw[1+size:])
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", B64(p.N.Bytes()), B64(big.NewInt(int64(p.E)).Bytes())
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", B64(p)
	}
	return m
}

// JWKS is the key set of keys.
func JWKS(keys ...*Key) []byte {
	list := []any{}
	for _, k := range keys {
		list = append(list, k.JWK(false))
	}
	b, _ := json.Marshal(map[string]any{"keys": list})
	return b
}

// SignRaw signs header.payload, both given as JSON text.
func (k *Key) SignRaw(header, payload string) string {
	input := B64([]byte(header)) + "." + B64([]byte(payload))
	return input + "." + B64(k.SignatureOver([]byte(input)))
}

// Sign makes a token: the header {"alg","kid","typ":"JWT"} with any extra
// members (JSON text such as `"jku":"..."`), and the claims.
func (k *Key) Sign(claims map[string]any, extraHeader ...string) string {
	h := fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"JWT"`, k.Alg, k.Kid)
	for _, e := range extraHeader {
		h += "," + e
	}
	p, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return k.SignRaw(h+"}", string(p))
}

// SignatureOver is the JWS signature of input under k.Alg.
func (k *Key) SignatureOver(input []byte) []byte {
	hash := crypto.SHA256
	switch {
	case strings.HasSuffix(k.Alg, "384"):
		hash = crypto.SHA384
	case strings.HasSuffix(k.Alg, "512"):
		hash = crypto.SHA512
	}
	var digest []byte
	switch hash {
	case crypto.SHA256:
		d := sha256.Sum256(input)
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384(input)
		digest = d[:]
	default:
		d := sha512.Sum512(input)
		digest = d[:]
	}
	switch p := k.Signer.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, p, digest)
		if err != nil {
			panic(err)
		}
		size := (p.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig
	case *rsa.PrivateKey:
		var sig []byte
		var err error
		if strings.HasPrefix(k.Alg, "PS") {
			sig, err = rsa.SignPSS(rand.Reader, p, hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(nil, p, hash, digest)
		}
		if err != nil {
			panic(err)
		}
		return sig
	case ed25519.PrivateKey:
		return ed25519.Sign(p, input)
	}
	panic("verifytest: unknown key type")
}

// Hang is a Status that makes the origin answer nothing until the client
// gives up (or Release is called).
const Hang = -1

// Origin serves an issuer's discovery document at
// /.well-known/openid-configuration (issuer: its own URL, jwks_uri: its
// /jwks.json) and its key set at /jwks.json.
type Origin struct {
	URL string
	srv *httptest.Server

	mu           sync.Mutex
	body         []byte
	cacheControl string
	age          string
	etag         string
	status       int
	algs         []string
	issuer       string
	jwksURI      string
	release      chan struct{}

	jwksFetches, discoveryFetches, notModified atomic.Int64
}

// NewOrigin serves keys with Cache-Control "public, max-age=300", and a
// discovery document listing algs.
func NewOrigin(algs []string, keys ...*Key) *Origin {
	o := &Origin{body: JWKS(keys...), cacheControl: "public, max-age=300", status: http.StatusOK, algs: algs, release: make(chan struct{})}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	o.URL = o.srv.URL
	return o
}

// Close stops serving; clients then see a refused connection.
func (o *Origin) Close() {
	o.Release()
	o.srv.Close()
}

// Release ends every request held by Hang, without an answer.
func (o *Origin) Release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case <-o.release:
	default:
		close(o.release)
	}
	o.release = make(chan struct{})
}

func (o *Origin) with(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f()
}

// SetKeys replaces the key set with keys.
func (o *Origin) SetKeys(keys ...*Key) { o.SetBody(JWKS(keys...)) }

// SetBody replaces the key set's body with any bytes.
func (o *Origin) SetBody(b []byte) { o.with(func() { o.body = b }) }

// SetCacheControl sets the Cache-Control header ("" for none) and the Age
// header ("" for none) of both documents.
func (o *Origin) SetCacheControl(cc, age string) { o.with(func() { o.cacheControl, o.age = cc, age }) }

// SetETag makes the key set carry etag and answer If-None-Match with 304.
func (o *Origin) SetETag(etag string) { o.with(func() { o.etag = etag }) }

// SetStatus sets the status of both documents' answers, or Hang.
func (o *Origin) SetStatus(status int) { o.with(func() { o.status = status }) }

// SetDiscovery changes the discovery document: its issuer and jwks_uri
// ("" for the origin's own) and its algorithms.
func (o *Origin) SetDiscovery(issuer, jwksURI string, algs []string) {
	o.with(func() { o.issuer, o.jwksURI, o.algs = issuer, jwksURI, algs })
}

// JWKSFetches counts the requests for the key set, 304s included.
func (o *Origin) JWKSFetches() int64 { return o.jwksFetches.Load() }

// DiscoveryFetches counts the requests for the discovery document.
func (o *Origin) DiscoveryFetches() int64 { return o.discoveryFetches.Load() }

// NotModified counts the 304 answers.
func (o *Origin) NotModified() int64 { return o.notModified.Load() }

func (o *Origin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	body, cc, age, etag, status, algs := o.body, o.cacheControl, o.age, o.etag, o.status, o.algs
	iss, uri, release := o.issuer, o.jwksURI, o.release
	o.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		o.discoveryFetches.Add(1)
		if iss == "" {
			iss = o.URL
		}
		if uri == "" {
			uri = o.URL + "/jwks.json"
		}
		body, _ = json.Marshal(map[string]any{"issuer": iss, "jwks_uri": uri, "id_token_signing_alg_values_supported": algs})
		etag = ""
	case "/jwks.json":
		o.jwksFetches.Add(1)
	default:
		http.NotFound(w, r)
		return
	}
	if status == Hang {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	if age != "" {
		w.Header().Set("Age", age)
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			o.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
