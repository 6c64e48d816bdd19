package jsruntime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dop251/goja"
)

// fetch is t.fetch(url, init): an HTTP request on its own goroutine, bound to
// the attempt (aborted with t.signal). It resolves to a Response-like object
// {status, ok, statusText, url, headers{get, has, entries, forEach}, text(),
// json()}; network failures reject with a TypeError as in browsers.
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
	limit := a.ex.maxOutput
	a.async(func(context.Context) func() {
		resp, err := a.ex.httpClient.Do(req)
		if err != nil {
			return func() { t.fetchFailed(at, reject, err) }
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
		if err == nil && len(data) > limit {
			err = fmt.Errorf("response body exceeds %d bytes", limit)
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
		v = w.rt.NewTypeError("fetch failed: %s", err.Error())
	}
	if err := reject(v); err != nil {
		w.uncatchable(err)
	}
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
