package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
)

var methodNamePattern = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)*$`)

const (
	maxMethodLength = 64
	maxIDLength     = 128
)

// httpRPC serves POST /v1/rpc/<method> (urlMethod set) and POST /rpc, in the
// processing order of CONTRACT.md §1.6.
func (s *Server) httpRPC(c echo.Context, urlMethod string) error {
	r := c.Request()
	requestID := r.Header.Get("X-Request-Id")
	if requestID == "" {
		requestID = uuid.NewString()
	}
	fail := func(id string, err error) error {
		frame, code := errorFrame(id, err)
		return writeJSON(c, statusOf(code), frame)
	}
	// 2. Authenticate before reading the body.
	ident, err := s.auth.Authenticate(auth.Credentials{Token: auth.BearerToken(r.Header), Header: r.Header})
	if err != nil {
		return fail(requestID, err)
	}
	// 3. Read the body within the cap.
	body, err := s.readBody(r)
	if err != nil {
		return fail(requestID, err)
	}
	// 4. Parse: the body must be a JSON object; empty means {}.
	var root any = map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&root); err != nil || dec.More() {
			return fail(requestID, errInvalidInput("Gateway RPC payload must be valid JSON."))
		}
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return fail(requestID, errInvalidRequest("RPC body must be a JSON object"))
	}
	// 5. Bounds.
	if err := checkBounds(obj); err != nil {
		return fail(requestID, err)
	}
	// 6. Method name and params.
	var methodV any = urlMethod
	var p any = obj
	if urlMethod == "" {
		methodV = obj["method"]
		p = obj["params"]
	} else if _, envelope := obj["method"]; envelope {
		p = obj["params"]
	}
	name, err := validMethodName(methodV)
	if err != nil {
		return fail(requestID, err)
	}
	// 7. Response id.
	id := requestID
	if bid, ok := obj["id"].(string); ok {
		if len([]rune(bid)) > maxIDLength {
			return fail(requestID, errInvalidInput("id exceeds the maximum length of %d characters.", maxIDLength))
		}
		id = bid
	}
	payload, err := s.invoke(c.Request().Context(), &call{method: name, params: asParams(p), ident: ident, transport: "http"})
	if err != nil {
		var te thrownError
		if errors.As(err, &te) {
			id = requestID
		}
		var he *host.Error
		if !errors.As(err, &he) {
			s.log.Error("rpc failed", "method", name, "requestId", requestID, "err", err)
		}
		return fail(id, err)
	}
	return writeJSON(c, http.StatusOK, okFrame(id, payload))
}

func validMethodName(v any) (string, error) {
	name, ok := v.(string)
	if !ok {
		return "", errInvalidInput("Gateway method name must be a string.")
	}
	if len([]rune(name)) > maxMethodLength {
		return "", errInvalidInput("method exceeds the maximum length of %d characters.", maxMethodLength)
	}
	if !methodNamePattern.MatchString(name) {
		return "", errInvalidInput("Gateway method name is invalid.")
	}
	return name, nil
}

// readBody reads the request body within MaxBodyBytes: a Content-Length
// that is not a non-negative integer is 400, one above the cap 413 before
// reading, and a body that grows past the cap while streaming 413.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	tooLarge := &host.Error{Code: "PayloadTooLarge", Message: fmt.Sprintf("Gateway request payload exceeds %d bytes.", s.maxBody)}
	if cl := r.Header.Get("Content-Length"); cl != "" {
		cl = strings.TrimSpace(cl)
		n, ok := new(big.Int).SetString(cl, 10)
		if !ok || n.Sign() < 0 || strings.ContainsAny(cl, "+-") {
			return nil, errInvalidInput("Gateway request Content-Length must be a non-negative integer.")
		}
		if n.Cmp(big.NewInt(s.maxBody)) > 0 {
			return nil, tooLarge
		}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, s.maxBody+1))
	if err != nil {
		return nil, errInvalidInput("Gateway request body could not be read: %v", err)
	}
	if int64(len(b)) > s.maxBody {
		return nil, tooLarge
	}
	return b, nil
}
