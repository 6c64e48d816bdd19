package jsruntime

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/dop251/goja"
)

// fetch is t.fetch(url, init): an HTTP request on its own goroutine, bound to
// the attempt (aborted with t.signal). It resolves to a Response-like object
// {status, ok, statusText, url, headers{get, has, entries, forEach}, text(),
// json()}. Failures reject with a TypeError as in browsers; a network
// failure (refused, reset, DNS, timeout, a body cut short) carries
// retryable: true, so that ctx.task retries it like any task failure,
// while a request that can never succeed as made (an unsupported scheme, a
// certificate the system does not trust, a body over the bound) is not
// retried, like a TypeError the body throws itself.
func (t *taskRun) fetch(at *attemptRun, call goja.FunctionCall) goja.Value {
	a := t.a
	w := a.w
	rt := w.rt
	url := call.Argument(0)
	if !present(url) {
		panic(rt.NewTypeError("t.fetch(url, init): url is required"))
	}
	target := url.String()
	init := optionsObject(rt, call.Argument(1), "t.fetch init")
	method := strings.ToUpper(optString(rt, init, "method", func(f string) string { return "t.fetch init." + f }))
	if method == "" {
		method = http.MethodGet
	}
	header := http.Header{}
	var body io.Reader
	if init != nil {
		if hv := init.Get("headers"); present(hv) {
			ho := optionsObject(rt, hv, "t.fetch init.headers")
			for _, k := range ho.Keys() {
				header.Set(k, ho.Get(k).String())
			}
		}
		if bv := init.Get("body"); present(bv) {
			switch b := bv.Export().(type) {
			case string:
				body = strings.NewReader(b)
			case []byte:
				body = strings.NewReader(string(b))
			default:
				if bytes, ok := w.bytesOf(bv); ok {
					body = strings.NewReader(string(bytes))
				} else {
					panic(rt.NewTypeError("t.fetch init.body must be a string or Uint8Array (use JSON.stringify for objects), got %s", describeValue(bv)))
				}
			}
		}
	}
	req, err := http.NewRequestWithContext(at.ctx, method, target, body)
	if err != nil {
		panic(rt.NewTypeError("t.fetch: invalid request: %s", err.Error()))
	}
	req.Header = header
	p, resolve, reject := rt.NewPromise()
	limit := a.ex.maxFetchBody()
	a.async(func(context.Context) func() {
		resp, err := a.ex.httpClient.Do(req)
		if err != nil {
			return func() { t.fetchFailed(at, reject, err) }
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
		if err == nil && len(data) > limit {
			err = errBodyTooLarge{limit}
		}
		if err != nil {
			return func() { t.fetchFailed(at, reject, err) }
		}
		return func() {
			if err := resolve(w.newResponse(resp, data)); err != nil {
				w.uncatchable(err)
			}
		}
	})
	return rt.ToValue(p)
}

func (t *taskRun) fetchFailed(at *attemptRun, reject func(any) error, err error) {
	w := t.a.w
	var v goja.Value
	if at.signal.aborted && errors.Is(err, context.Canceled) {
		v = at.signal.reason
	} else {
		code, network := fetchFailure(err)
		v = w.helpers.fetchFailed(err.Error(), code, network)
	}
	if err := reject(v); err != nil {
		w.uncatchable(err)
	}
}

// errBodyTooLarge: a t.fetch response body over the bound.
type errBodyTooLarge struct{ limit int }

func (e errBodyTooLarge) Error() string {
	return fmt.Sprintf("response body exceeds %d bytes", e.limit)
}

// fetchFailure classifies a t.fetch error: network is false for a request
// that can never succeed as made (an unsupported scheme, a certificate the
// system does not trust, too many redirects, a body over the bound), true
// for everything else: a failure of the network that a later attempt may
// not meet. code is the Node.js-style code of the failure when there is
// one (ECONNREFUSED, ECONNRESET, ENOTFOUND, ETIMEDOUT ...), "" otherwise.
func fetchFailure(err error) (code string, network bool) {
	var (
		dnsErr      *net.DNSError
		unknownCA   x509.UnknownAuthorityError
		invalidCert x509.CertificateInvalidError
		hostErr     x509.HostnameError
		verifyErr   *tls.CertificateVerificationError
		tooLarge    errBodyTooLarge
		netErr      net.Error
	)
	switch {
	case errors.As(err, &tooLarge):
		return "", false
	case errors.As(err, &unknownCA), errors.As(err, &invalidCert), errors.As(err, &hostErr), errors.As(err, &verifyErr):
		return "", false
	case strings.Contains(err.Error(), "unsupported protocol scheme"), strings.Contains(err.Error(), "stopped after"):
		// net/http's own errors for these carry no type to test.
		return "", false
	case errors.Is(err, syscall.ECONNREFUSED):
		return "ECONNREFUSED", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "ECONNRESET", true
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "ENOTFOUND", true
		}
		if dnsErr.IsTimeout {
			return "ETIMEDOUT", true
		}
		return "EAI_AGAIN", true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "ETIMEDOUT", true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "UND_ERR_SOCKET", true
	}
	return "", true
}

func (w *worker) newResponse(resp *http.Response, data []byte) *goja.Object {
	rt := w.rt
	o := rt.NewObject()
	set := func(k string, v any) { must(o.Set(k, v)) }
	set("status", resp.StatusCode)
	set("ok", resp.StatusCode >= 200 && resp.StatusCode <= 299)
	set("statusText", strings.TrimSpace(strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode))))
	set("url", resp.Request.URL.String())
	h := rt.NewObject()
	must(h.Set("get", func(call goja.FunctionCall) goja.Value {
		vals := resp.Header.Values(call.Argument(0).String())
		if len(vals) == 0 {
			return goja.Null()
		}
		return rt.ToValue(strings.Join(vals, ", "))
	}))
	must(h.Set("has", func(call goja.FunctionCall) goja.Value {
		return rt.ToValue(len(resp.Header.Values(call.Argument(0).String())) > 0)
	}))
	entries := func() [][]any {
		var out [][]any
		for k, vs := range resp.Header {
			out = append(out, []any{strings.ToLower(k), strings.Join(vs, ", ")})
		}
		return out
	}
	must(h.Set("entries", func(goja.FunctionCall) goja.Value {
		arr := []any{}
		for _, e := range entries() {
			arr = append(arr, rt.NewArray(e...))
		}
		return rt.NewArray(arr...)
	}))
	must(h.Set("forEach", func(call goja.FunctionCall) goja.Value {
		fn, ok := goja.AssertFunction(call.Argument(0))
		if !ok {
			panic(rt.NewTypeError("headers.forEach(callback): callback must be a function"))
		}
		for _, e := range entries() {
			if _, err := fn(goja.Undefined(), rt.ToValue(e[1]), rt.ToValue(e[0])); err != nil {
				panic(err)
			}
		}
		return goja.Undefined()
	}))
	set("headers", h)
	text := string(data)
	set("text", func(goja.FunctionCall) goja.Value {
		p, resolve, _ := rt.NewPromise()
		_ = resolve(text)
		return rt.ToValue(p)
	})
	set("json", func(goja.FunctionCall) goja.Value {
		p, resolve, reject := rt.NewPromise()
		v, err := w.helpers.parse(text)
		if err != nil {
			_ = reject(exceptionValue(rt, err))
		} else {
			_ = resolve(v)
		}
		return rt.ToValue(p)
	})
	return o
}

// bytesOf reads a Uint8Array (or other ArrayBuffer view) argument.
func (w *worker) bytesOf(v goja.Value) ([]byte, bool) {
	o, ok := v.(*goja.Object)
	if !ok {
		return nil, false
	}
	if ab, ok := o.Export().(goja.ArrayBuffer); ok {
		return ab.Bytes(), true
	}
	buf := o.Get("buffer")
	if !present(buf) {
		return nil, false
	}
	ab, ok := buf.Export().(goja.ArrayBuffer)
	if !ok {
		return nil, false
	}
	off, n := o.Get("byteOffset").ToInteger(), o.Get("byteLength").ToInteger()
	b := ab.Bytes()
	if off < 0 || n < 0 || off+n > int64(len(b)) {
		return nil, false
	}
	return b[off : off+n], true
}
