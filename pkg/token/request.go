package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Request is one token request, in the shape of the hotsock jwt-issuer.
type Request struct {
	// Claims is the claims object as the caller sent it.
	Claims map[string]json.RawMessage
	// TTL is the requested lifetime in seconds; 0 means not set.
	TTL    int64
	SetIat bool
	SetJti bool
}

// RequestError is a caller's mistake: the message names the field and the
// limit.
type RequestError struct{ msg string }

func (e *RequestError) Error() string { return "invalid request: " + e.msg }

func badRequest(format string, args ...any) error {
	return &RequestError{msg: fmt.Sprintf(format, args...)}
}

// IsRequestError tells a caller's mistake from a failure of the issuer.
func IsRequestError(err error) bool {
	var re *RequestError
	return errors.As(err, &re)
}

// ParseRequest decodes and validates an invoke payload. Unknown fields are
// errors, so a misspelt "tll" is not silently ignored.
func ParseRequest(payload []byte) (Request, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		return Request{}, badRequest("payload must be a JSON object like "+
			`{"claims":{...},"ttl":30,"setIat":true,"setJti":true}`+" (%s)", jsonProblem(payload, err))
	}
	return parseFields(fields, "")
}

func parseFields(fields map[string]json.RawMessage, path string) (Request, error) {
	var req Request
	for name, raw := range fields {
		var err error
		switch name {
		case "claims":
			req.Claims, err = parseClaims(raw, path+"claims")
		case "ttl":
			req.TTL, err = parseTTL(raw, path+"ttl")
		case "setIat":
			req.SetIat, err = parseBool(raw, path+"setIat")
		case "setJti":
			req.SetJti, err = parseBool(raw, path+"setJti")
		default:
			err = badRequest("unknown field %q in %s (allowed: claims, ttl, setIat, setJti)", name, orTop(path))
		}
		if err != nil {
			return Request{}, err
		}
	}
	if req.Claims == nil {
		return Request{}, badRequest("%sclaims is required and must be a JSON object", path)
	}
	return req, nil
}

func orTop(path string) string {
	if path == "" {
		return "the request"
	}
	return path[:len(path)-1]
}

func parseClaims(raw json.RawMessage, field string) (map[string]json.RawMessage, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("{")) {
		return nil, badRequest("%s must be a JSON object, got %s", field, kind(raw))
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, badRequest("%s must be a JSON object: %v", field, err)
	}
	return claims, nil
}

func parseTTL(raw json.RawMessage, field string) (int64, error) {
	if string(raw) == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(raw), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, badRequest("%s must be an integer number of seconds, got %s", field, kind(raw))
		}
		n = int64(f)
	}
	if n < 0 {
		return 0, badRequest("%s is %d, must not be negative", field, n)
	}
	return n, nil
}

func parseBool(raw json.RawMessage, field string) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}
	return false, badRequest("%s must be true or false, got %s", field, kind(raw))
}

// kind names a JSON value's type without echoing it: claim values can be
// personal data and do not belong in logs.
func kind(raw json.RawMessage) string {
	t := bytes.TrimLeft(raw, " \t\r\n")
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func jsonProblem(payload []byte, err error) string {
	if err == nil {
		return "got " + kind(payload)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	return "got " + kind(payload)
}
