package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
)

const (
	maxMethodLength = 64
	maxIDLength     = 128
)

// retryAfterSeconds is the Retry-After of a SERVICE_UNAVAILABLE answer
// (the gateway's storage is failing: a full disk, a lost database file).
// Such faults last seconds to minutes, so clients wait a few seconds
// rather than hammer a struggling disk.
const retryAfterSeconds = "5"

// httpRPC serves POST /v1/rpc/<method> (v1 set, seg the still-escaped method
// segment) and POST /rpc, in the processing order of docs/rpc.md.
func (s *Server) httpRPC(c echo.Context, seg string, v1 bool) (err error) {
	r := c.Request()
	// 1. The request id echoed by frames that have no usable body id.
	requestID := r.Header.Get("X-Request-Id")
	if requestID == "" {
		requestID = uuid.NewString()
	}
	fail := func(id string, err error) error {
		frame, code := errorFrame(id, err)
		if code == host.CodeServiceUnavailable {
			c.Response().Header().Set("Retry-After", retryAfterSeconds)
		}
		s.metrics.sent("http", "response", "error", "")
		return writeJSON(c, statusOf(code), frame)
	}
	// refused counts a request refused before dispatch (kind "http", or
	// "auth" for a credential), then answers it.
	refused := func(kind string, err error) error {
		_, code := wireError(err)
		s.metrics.errorKind(kind, "http", code)
		return fail(requestID, err)
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc handler panicked", "requestId", requestID, "panic", p)
			err = fail(requestID, fmt.Errorf("panic: %v", p))
		}
	}()
	urlMethod := ""
	if v1 {
		if urlMethod, err = decodeMethodSegment(seg); err != nil {
			return refused("http", err)
		}
	}
	// 2. Authenticate before reading the body.
	s.metrics.received("http", "request")
	ident, err := s.auth.Authenticate(auth.Credentials{Token: auth.BearerToken(r.Header), Header: r.Header})
	s.metrics.authEvent("http", s.auth.Mode(), err == nil)
	if err != nil {
		return refused("auth", err)
	}
	// A request a browser may have sent from another site is refused
	// before it can act (trusted-proxy mode).
	if s.guard != nil {
		if err := s.guard.CheckStateChange(r); err != nil {
			return refused("http", err)
		}
	}
	// 3-5. Read, parse and bound-check the body.
	body, err := s.readBody(r)
	if err != nil {
		return refused("http", err)
	}
	obj, err := decodeRPCBody(body)
	if err != nil {
		return refused("http", err)
	}
	// 6. Method name and params: /rpc takes both from the envelope; v1 takes
	// the method from the URL and params from body.params only when the body
	// is an envelope (has a method key), else the whole body is params.
	var methodV any = urlMethod
	var p any = obj
	if !v1 {
		methodV = obj["method"]
		p = obj["params"]
	} else if _, envelope := obj["method"]; envelope {
		p = obj["params"]
	}
	name, err := validMethodName(methodV)
	if err != nil {
		return refused("http", err)
	}
	// 7. Response id: a string body id, else the request id.
	id := requestID
	if bid, ok := obj["id"].(string); ok {
		if utf16Len(bid) > maxIDLength {
			return refused("http", errInvalidInput("id exceeds the maximum length of %d characters.", maxIDLength))
		}
		id = bid
	}
	// 8-9. Scope gate, then the method.
	start := time.Now()
	payload, err := s.invoke(r.Context(), &call{method: name, params: asParams(p), ident: ident, transport: "http"})
	s.metrics.rpc(name, "http", start, err)
	if err != nil {
		if responseIDIsRequestID(err) {
			id = requestID
		}
		var he *host.Error
		if !errors.As(err, &he) {
			s.log.Error("rpc failed", "method", name, "requestId", requestID, "err", err)
		}
		return fail(id, err)
	}
	var b []byte
	if a, ok := payload.(jsonAppender); ok {
		buf := s.frameBufs.Get().(*[]byte)
		defer s.frameBufs.Put(buf)
		b = appendOKFrame((*buf)[:0], id, a)
		if cap(b) <= maxPooledFrame {
			*buf = b
		}
	} else if b, err = json.Marshal(okFrame(id, payload)); err != nil {
		s.log.Error("rpc response could not be encoded", "method", name, "requestId", requestID, "err", err)
		return fail(requestID, err)
	}
	setCommonHeaders(c.Response().Header(), "application/json")
	c.Response().WriteHeader(http.StatusOK)
	_, err = c.Response().Write(b)
	s.metrics.sent("http", "response", "ok", "")
	return err
}

// maxPooledFrame bounds the encoding buffers kept for reuse: a frame that
// carried a large output is not kept.
const maxPooledFrame = 64 << 10

// responseIDIsRequestID reports whether a failed call answers with the
// request id instead of body.id: upstream throws these errors rather than
// returning them (docs/rpc.md step 10), which is every error that is not
// a Smithers error and every error marked with thrown.
func responseIDIsRequestID(err error) bool {
	var te thrownError
	if errors.As(err, &te) {
		return true
	}
	var he *host.Error
	return !errors.As(err, &he)
}

// decodeRPCBody parses an HTTP RPC body (empty means {}), requires a JSON
// object and applies the bounds of docs/rpc.md. Numbers stay
// json.Number.
func decodeRPCBody(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	obj, ok := decodeFlatStrings(body)
	if !ok {
		var err error
		if obj, err = decodeObject(body); err != nil {
			return nil, err
		}
	}
	if err := checkBounds(obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// decodeObject is decodeRPCBody's general decoder (decodeFlatStrings is its
// fast path): exactly one JSON value, an object, numbers kept as written.
func decodeObject(body []byte) (map[string]any, error) {
	var root any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := dec.Decode(&root)
	if err == nil {
		// Exactly one value: anything but whitespace after it is invalid.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err != nil {
		// Go's decoder refuses nesting beyond 10000 levels, which JSON.parse
		// accepts and the bounds check then refuses; answer as the bounds
		// check does.
		if strings.Contains(err.Error(), "exceeded max depth") {
			return nil, errDepth()
		}
		return nil, errInvalidInput("Gateway RPC payload must be valid JSON.")
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return nil, errInvalidRequest("RPC body must be a JSON object")
	}
	return obj, nil
}

// decodeFlatStrings decodes the most common body, an object whose values
// are all strings of printable ASCII without escapes ({"runId":"..."}),
// without the general decoder: it allocates a decoder and buffers for
// every request. It reports false for anything else (the general decoder
// then decides), so it accepts nothing the decoder would refuse and
// decodes what it accepts as the decoder does (a repeated key: the last
// one wins).
func decodeFlatStrings(b []byte) (map[string]any, bool) {
	i := 0
	skip := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		i++
		start := i
		for i < len(b) && b[i] != '"' {
			if c := b[i]; c < 0x20 || c > 0x7e || c == '\\' {
				return "", false
			}
			i++
		}
		if i >= len(b) {
			return "", false
		}
		i++
		return string(b[start : i-1]), true
	}
	skip()
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i++
	obj := make(map[string]any, 2)
	skip()
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			skip()
			k, ok := str()
			if !ok {
				return nil, false
			}
			skip()
			if i >= len(b) || b[i] != ':' {
				return nil, false
			}
			i++
			skip()
			v, ok := str()
			if !ok {
				return nil, false
			}
			obj[k] = v
			skip()
			if i < len(b) && b[i] == ',' {
				i++
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return nil, false
		}
	}
	skip()
	return obj, i == len(b)
}

// validMethodName checks an RPC method name (docs/rpc.md step 6); the
// length is counted in UTF-16 code units as JavaScript does.
func validMethodName(v any) (string, error) {
	name, ok := v.(string)
	if !ok {
		return "", errInvalidInput("Gateway method name must be a string.")
	}
	if utf16Len(name) > maxMethodLength {
		return "", errInvalidInput("method exceeds the maximum length of %d characters.", maxMethodLength)
	}
	if !validMethodChars(name) {
		return "", errInvalidInput("Gateway method name is invalid.")
	}
	return name, nil
}

// validMethodChars reports whether name matches
// ^[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)*$: dot-separated segments, each
// a lower-case letter then letters and digits.
func validMethodChars(name string) bool {
	start := true // at the first byte of a segment
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case start && 'a' <= c && c <= 'z':
			start = false
		case !start && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'):
		case !start && c == '.':
			start = true
		default:
			return false
		}
	}
	return !start
}

// readBody reads the request body within MaxBodyBytes (docs/rpc.md): a
// Content-Length that is not all digits is INVALID_INPUT, one above the cap
// PayloadTooLarge before anything is read, and a body that grows past the
// cap while streaming (chunked, or a lying length) PayloadTooLarge. A body
// of exactly the cap is accepted.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	tooLarge := &host.Error{Code: codePayloadTooLarge, Message: fmt.Sprintf("Gateway request payload exceeds %d bytes.", s.maxBody)}
	if values, present := r.Header["Content-Length"]; present && len(values) > 0 {
		n, ok := parseContentLength(values[0])
		if !ok {
			return nil, errInvalidInput("Gateway request Content-Length must be a non-negative integer.")
		}
		if n > s.maxBody {
			return nil, tooLarge
		}
	}
	if r.ContentLength > s.maxBody {
		return nil, tooLarge
	}
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength >= 0 {
		// Known length, within the cap: one buffer of that size (the
		// server ends the body there).
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, errInvalidInput("Gateway request body could not be read.")
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, s.maxBody+1))
	if err != nil {
		return nil, errInvalidInput("Gateway request body could not be read.")
	}
	if int64(len(b)) > s.maxBody {
		return nil, tooLarge
	}
	return b, nil
}

// parseContentLength accepts a trimmed, non-empty string of ASCII digits. A
// value too large for int64 is reported as the largest int64, so that it
// compares as too large (upstream compares as a big integer).
func parseContentLength(v string) (int64, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63-1-int64(c-'0'))/10 {
			n = 1<<63 - 1
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
