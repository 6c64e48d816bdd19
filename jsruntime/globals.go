package jsruntime

import (
	"fmt"
	neturl "net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/url"
	"golang.org/x/net/idna"
)

// installGlobals installs the plain web globals that workflow modules may use: URL,
// URLSearchParams, TextEncoder, TextDecoder, atob and btoa. It defines no `require` and no
// `process`. It must run on rt's own goroutine, once per runtime.
func installGlobals(rt *goja.Runtime) error {
	g := &globals{rt: rt}
	if err := g.install(); err != nil {
		return fmt.Errorf("install globals: %w", err)
	}
	return nil
}

// globals holds the intrinsics that the bindings of one runtime use, captured at installation
// so that module code replacing a global (say Uint8Array) cannot change how the bindings behave.
type globals struct {
	rt         *goja.Runtime
	uint8Array *goja.Object
	isView     goja.Callable
	errorCtor  *goja.Object
	rangeError *goja.Object
}

// webClassesName names the script of the web classes; the "smithers:" scheme keeps its frames
// out of exceptionLocation.
const webClassesName = "smithers:globals.js"

// webClassesSource evaluates to a function that builds the URL, TextEncoder and TextDecoder
// classes around Go bindings. They are JavaScript classes so that calling them without `new` is
// a TypeError and subclassing works.
//
// URL is ours rather than goja_nodejs's, whose URL drops a path's trailing slash
// ("https://h/a/" becomes "https://h/a"), resolves a relative reference against the base's root,
// leaves the port out of origin and does not show searchParams changes in href: each of those
// would send a workflow's request to the wrong place. The parsing is Go's (parseURL); the
// query's list view is goja_nodejs's URLSearchParams, kept in step with the URL both ways.
const webClassesSource = `(function (parseURL, URLSearchParams, initEncoder, initDecoder) {
  "use strict";
  const records = new WeakMap(); // URL -> parsed record (see parseURL)
  const linked = new WeakMap();  // URL -> its searchParams
  const sp = URLSearchParams.prototype;
  const spAppend = sp.append, spDelete = sp.delete, spKeys = sp.keys, spToString = sp.toString;

  function str(v) {
    if (typeof v === "symbol") throw new TypeError("Cannot convert a Symbol value to a string");
    return String(v);
  }
  function record(url) {
    const r = records.get(url);
    if (r === undefined) throw new TypeError("Illegal invocation: this is not a URL");
    return r;
  }
  function host(r) {
    return r.hostname + (r.port !== "" ? ":" + r.port : "");
  }
  function serialize(r) {
    let s = r.protocol;
    if (r.hasAuthority) {
      s += "//";
      if (r.username !== "" || r.password !== "") {
        s += r.username + (r.password !== "" ? ":" + r.password : "") + "@";
      }
      s += host(r);
    }
    return s + r.pathname + r.search + r.hash;
  }
  // update applies change and re-parses; as in browsers, a setter whose value would not make a
  // valid URL (or that accept refuses) changes nothing.
  function update(url, change, accept) {
    const r = record(url);
    let next;
    try {
      next = parseURL(serialize(Object.assign({}, r, change)));
    } catch (e) {
      return;
    }
    if (accept === undefined || accept(next, r)) records.set(url, next);
  }
  // refill makes the searchParams of url (if it has been asked for) list url's query again.
  function refill(url) {
    const params = linked.get(url);
    if (params === undefined) return;
    for (const k of Array.from(spKeys.call(params))) spDelete.call(params, k);
    for (const [k, v] of new URLSearchParams(record(url).search)) spAppend.call(params, k, v);
  }
  // A URL's searchParams is a URLSearchParams whose mutators also write the query back into
  // its URL (goja_nodejs's objects take no own properties, so the override sits on a prototype).
  const owners = new WeakMap(); // searchParams -> URL
  const linkedProto = Object.create(sp);
  for (const name of ["append", "delete", "set", "sort"]) {
    const method = sp[name];
    Object.defineProperty(linkedProto, name, {
      value: { [name]: function () {
        const res = method.apply(this, arguments);
        const url = owners.get(this);
        if (url !== undefined) {
          const q = spToString.call(this);
          update(url, { search: q === "" ? "" : "?" + q });
        }
        return res;
      } }[name],
      writable: true, enumerable: false, configurable: true,
    });
  }
  function hasHost(r) {
    return r.hasAuthority && r.hostname !== "" && r.protocol !== "file:";
  }

  class URL {
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError("URL: 1 argument required, but only 0 present");
      records.set(this, parseURL(str(url), base === undefined ? undefined : str(base)));
    }
    static canParse(url, base) {
      try {
        parseURL(str(url), base === undefined ? undefined : str(base));
        return true;
      } catch (e) {
        return false;
      }
    }
    get href() { return serialize(record(this)); }
    set href(v) {
      record(this);
      records.set(this, parseURL(str(v)));
      refill(this);
    }
    get origin() {
      const r = record(this);
      return r.special && r.protocol !== "file:" ? r.protocol + "//" + host(r) : "null";
    }
    get protocol() { return record(this).protocol; }
    set protocol(v) {
      const p = str(v).split(":")[0].toLowerCase();
      if (!/^[a-z][a-z0-9+.-]*$/.test(p)) return;
      update(this, { protocol: p + ":" }, (next, prev) => next.special === prev.special);
    }
    get username() { return record(this).username; }
    set username(v) {
      if (hasHost(record(this))) update(this, { username: encodeURIComponent(str(v)) });
    }
    get password() { return record(this).password; }
    set password(v) {
      if (hasHost(record(this))) update(this, { password: encodeURIComponent(str(v)) });
    }
    get host() { return host(record(this)); }
    set host(v) {
      const r = record(this);
      const m = /^(\[[^\]]*\]|[^:\/?#\\]*)(?::(\d*))?/.exec(str(v));
      if (!r.hasAuthority || m[1] === "") return;
      update(this, { hostname: m[1], port: m[2] === undefined || m[2] === "" ? r.port : m[2] });
    }
    get hostname() { return record(this).hostname; }
    set hostname(v) {
      const m = /^(\[[^\]]*\]|[^:\/?#\\]*)/.exec(str(v));
      if (record(this).hasAuthority && m[1] !== "") update(this, { hostname: m[1] });
    }
    get port() { return record(this).port; }
    set port(v) {
      const s = str(v);
      const digits = /^\d*/.exec(s)[0];
      if (!hasHost(record(this)) || (s !== "" && digits === "")) return;
      update(this, { port: digits });
    }
    get pathname() { return record(this).pathname; }
    set pathname(v) {
      const r = record(this);
      if (r.opaquePath) return;
      let p = str(v).replace(/[?#]/g, (c) => (c === "?" ? "%3F" : "%23"));
      if (r.hasAuthority && !p.startsWith("/")) p = "/" + p;
      update(this, { pathname: p });
    }
    get search() { return record(this).search; }
    set search(v) {
      let s = str(v);
      if (s.startsWith("?")) s = s.slice(1);
      update(this, { search: s === "" ? "" : "?" + s.replace(/#/g, "%23") });
      refill(this);
    }
    get searchParams() {
      let params = linked.get(this);
      if (params === undefined) {
        params = new URLSearchParams(record(this).search);
        Object.setPrototypeOf(params, linkedProto);
        owners.set(params, this);
        linked.set(this, params);
      }
      return params;
    }
    get hash() { return record(this).hash; }
    set hash(v) {
      let h = str(v);
      if (h.startsWith("#")) h = h.slice(1);
      update(this, { hash: h === "" ? "" : "#" + h });
    }
    toString() { return serialize(record(this)); }
    toJSON() { return serialize(record(this)); }
  }
  for (const name of ["href", "origin", "protocol", "username", "password", "host", "hostname", "port",
    "pathname", "search", "searchParams", "hash", "toString", "toJSON"]) {
    Object.defineProperty(URL.prototype, name, { enumerable: true });
  }
  Object.defineProperty(URL.prototype, Symbol.toStringTag, { value: "URL", configurable: true });

  class TextEncoder {
    constructor() { initEncoder(this); }
  }
  class TextDecoder {
    constructor() { initDecoder(this, arguments[0], arguments[1]); }
  }
  return { URL, TextEncoder, TextDecoder };
})`

// install captures the intrinsics and defines the globals; see installGlobals.
func (g *globals) install() error {
	rt := g.rt
	var ok bool
	g.uint8Array = rt.Get("Uint8Array").ToObject(rt)
	g.errorCtor = rt.Get("Error").ToObject(rt)
	g.rangeError = rt.Get("RangeError").ToObject(rt)
	if g.isView, ok = goja.AssertFunction(rt.Get("ArrayBuffer").ToObject(rt).Get("isView")); !ok {
		return fmt.Errorf("ArrayBuffer.isView is not a function")
	}

	// goja_nodejs/url exports its constructors into a CommonJS-style module object; building that
	// object here avoids installing the `require` machinery.
	module := rt.NewObject()
	exports := rt.NewObject()
	if err := module.Set("exports", exports); err != nil {
		return err
	}
	url.Require(rt, module)
	searchParams := exports.Get("URLSearchParams")

	prg, err := goja.Compile(webClassesName, webClassesSource, true)
	if err != nil {
		return fmt.Errorf("compile web classes: %w", err)
	}
	fv, err := rt.RunProgram(prg)
	if err != nil {
		return fmt.Errorf("run web classes: %w", err)
	}
	build, ok := goja.AssertFunction(fv)
	if !ok {
		return fmt.Errorf("web classes script is not a function")
	}
	encoderSlot := goja.NewSymbol("TextEncoder")
	decoderSlot := goja.NewSymbol("TextDecoder")
	cv, err := build(goja.Undefined(), rt.ToValue(g.parseURL), searchParams,
		rt.ToValue(g.initEncoder(encoderSlot)), rt.ToValue(g.initDecoder(decoderSlot)))
	if err != nil {
		return fmt.Errorf("build web classes: %w", err)
	}
	classes := cv.ToObject(rt)
	encoder := classes.Get("TextEncoder").ToObject(rt)
	decoder := classes.Get("TextDecoder").ToObject(rt)
	if err := g.textEncoderPrototype(encoder.Get("prototype").ToObject(rt), encoderSlot); err != nil {
		return err
	}
	if err := g.textDecoderPrototype(decoder.Get("prototype").ToObject(rt), decoderSlot); err != nil {
		return err
	}

	global := rt.GlobalObject()
	for _, def := range []struct {
		name string
		v    goja.Value
	}{
		{"URL", classes.Get("URL")},
		{"URLSearchParams", searchParams},
		{"TextEncoder", encoder},
		{"TextDecoder", decoder},
		{"atob", g.function("atob", 1, g.atob)},
		{"btoa", g.function("btoa", 1, g.btoa)},
	} {
		if err := defineGlobal(global, def.name, def.v); err != nil {
			return err
		}
	}
	return nil
}

// defineGlobal defines a writable, configurable, non-enumerable global, like the built-ins.
func defineGlobal(global *goja.Object, name string, v goja.Value) error {
	if v == nil || goja.IsUndefined(v) {
		return fmt.Errorf("global %s has no value", name)
	}
	if err := global.DefineDataProperty(name, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
		return fmt.Errorf("define %s: %w", name, err)
	}
	return nil
}

// function wraps a binding into a JS function with a proper name and length.
func (g *globals) function(name string, length int, f func(goja.FunctionCall) goja.Value) goja.Value {
	fn := g.rt.ToValue(f).ToObject(g.rt)
	_ = fn.DefineDataProperty("name", g.rt.ToValue(name), goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	_ = fn.DefineDataProperty("length", g.rt.ToValue(length), goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	return fn
}

// attachState stores state under slot on this, the object a class constructor is building.
func (g *globals) attachState(this goja.Value, slot *goja.Symbol, state any) {
	obj, ok := this.(*goja.Object)
	if !ok {
		panic(g.rt.NewTypeError("Illegal constructor"))
	}
	if err := obj.DefineDataPropertySymbol(slot, g.rt.ToValue(state), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE); err != nil {
		panic(g.rt.NewTypeError("Illegal constructor"))
	}
}

// method defines a non-enumerable method on proto.
func (g *globals) method(proto *goja.Object, name string, length int, f func(goja.FunctionCall) goja.Value) error {
	return proto.DefineDataProperty(name, g.function(name, length, f), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// getter defines a read-only accessor on proto.
func (g *globals) getter(proto *goja.Object, name string, f func(goja.FunctionCall) goja.Value) error {
	return proto.DefineAccessorProperty(name, g.function("get "+name, 0, f), nil, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// state returns the Go state of a class instance, or throws a TypeError when this is not one.
func state[T any](rt *goja.Runtime, this goja.Value, slot *goja.Symbol, class string) T {
	if obj, ok := this.(*goja.Object); ok {
		if v := obj.GetSymbol(slot); v != nil {
			if s, ok := v.Export().(T); ok {
				return s
			}
		}
	}
	panic(rt.NewTypeError("Illegal invocation: this is not a %s", class))
}

// invalidCharacter builds the error a browser throws as a DOMException named InvalidCharacterError.
func (g *globals) invalidCharacter(msg string) *goja.Object {
	e := g.newError(g.errorCtor, msg)
	_ = e.DefineDataProperty("name", g.rt.ToValue("InvalidCharacterError"), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	_ = e.DefineDataProperty("code", g.rt.ToValue(5), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	return e
}

// newError constructs an error object with ctor (Error, RangeError, ...).
func (g *globals) newError(ctor *goja.Object, msg string) *goja.Object {
	e, err := g.rt.New(ctor, g.rt.ToValue(msg))
	if err != nil {
		panic(err)
	}
	return e
}

// toJSString converts v with JavaScript's ToString, as Web IDL does for DOMString arguments;
// a Symbol is a TypeError.
func (g *globals) toJSString(v goja.Value, what string) goja.String {
	if _, ok := v.(*goja.Symbol); ok {
		panic(g.rt.NewTypeError("%s: cannot convert a Symbol to a string", what))
	}
	return v.ToString().(goja.String)
}

// toUSVString is toJSString as a Go string: unpaired surrogates become U+FFFD.
func (g *globals) toUSVString(v goja.Value, what string) string {
	return g.toJSString(v, what).String()
}

// newUint8Array returns a new Uint8Array over b.
func (g *globals) newUint8Array(b []byte) *goja.Object {
	arr, err := g.rt.New(g.uint8Array, g.rt.ToValue(g.rt.NewArrayBuffer(b)))
	if err != nil {
		panic(err)
	}
	return arr
}

// bufferSourceBytes returns the bytes that an ArrayBuffer, typed array or DataView views,
// sharing their memory.
func (g *globals) bufferSourceBytes(v goja.Value) ([]byte, bool) {
	obj, ok := v.(*goja.Object)
	if !ok {
		return nil, false
	}
	if ab, ok := obj.Export().(goja.ArrayBuffer); ok {
		return ab.Bytes(), true
	}
	if !g.isArrayBufferView(obj) {
		return nil, false
	}
	var b []byte
	if err := g.rt.ExportTo(obj, &b); err != nil {
		return nil, false
	}
	return b, true
}

// uint8ArrayBytes returns the bytes of a Uint8Array (or Uint8ClampedArray), sharing its memory.
func (g *globals) uint8ArrayBytes(v goja.Value) ([]byte, bool) {
	obj, ok := v.(*goja.Object)
	if !ok || !g.isArrayBufferView(obj) || obj.ExportType() != reflect.TypeFor[[]byte]() {
		return nil, false
	}
	b, ok := obj.Export().([]byte)
	return b, ok
}

// isArrayBufferView reports whether obj is a typed array or a DataView, by the ArrayBuffer.isView
// captured at installation.
func (g *globals) isArrayBufferView(obj *goja.Object) bool {
	res, err := g.isView(goja.Undefined(), obj)
	return err == nil && res.ToBoolean()
}

// parseURL is the binding behind the URL class: parseURL(input, base?) parses input, resolved
// against base when given, and returns the URL's serialized parts ({protocol, username,
// password, hostname, port, pathname, search, hash, special, hasAuthority, opaquePath}).
// An invalid URL is a TypeError with code ERR_INVALID_URL, as in Node.js.
func (g *globals) parseURL(call goja.FunctionCall) goja.Value {
	rt := g.rt
	input := g.toUSVString(call.Argument(0), "URL: url")
	var base *string
	if b := call.Argument(1); !goja.IsUndefined(b) {
		s := g.toUSVString(b, "URL: base")
		base = &s
	}
	u, err := parseWebURL(input, base)
	if err != nil {
		e := rt.NewTypeError("%s", err.Error())
		_ = e.Set("code", "ERR_INVALID_URL")
		_ = e.Set("input", input)
		panic(e)
	}
	r := rt.NewObject()
	for _, kv := range [...]struct {
		k string
		v any
	}{
		{"protocol", u.protocol}, {"username", u.username}, {"password", u.password},
		{"hostname", u.hostname}, {"port", u.port}, {"pathname", u.pathname}, {"search", u.search},
		{"hash", u.hash}, {"special", u.special}, {"hasAuthority", u.hasAuthority}, {"opaquePath", u.opaquePath},
	} {
		_ = r.Set(kv.k, kv.v)
	}
	return r
}

// webURL is a URL in the serialized parts that the WHATWG URL API returns.
type webURL struct {
	protocol, username, password, hostname, port, pathname, search, hash string
	special, hasAuthority, opaquePath                                    bool
}

// parseWebURL parses input (against base, when given) with net/url and normalizes the result the
// way browsers do for the URLs workflows use: lower-case scheme and host, IDNA host, default port
// dropped, "." and ".." path segments resolved (keeping a trailing slash), "/" as the path of an
// http(s) URL without one, and percent-encoding of characters that cannot appear raw.
func parseWebURL(input string, base *string) (*webURL, error) {
	input = cleanURLInput(input)
	var u *neturl.URL
	if base != nil {
		b, err := parseAbsoluteURL(cleanURLInput(*base))
		if err != nil {
			return nil, fmt.Errorf("Invalid base URL: %q", *base)
		}
		ref, err := neturl.Parse(input)
		if err != nil {
			return nil, fmt.Errorf("Invalid URL: %q", input)
		}
		switch {
		case ref.Scheme != "":
			u = ref
		case b.Opaque != "" && !strings.HasPrefix(input, "#"):
			return nil, fmt.Errorf("Invalid URL: %q cannot be resolved against %q", input, *base)
		default:
			u = b.ResolveReference(ref)
		}
	} else {
		var err error
		if u, err = neturl.Parse(input); err != nil {
			return nil, fmt.Errorf("Invalid URL: %q", input)
		}
	}
	u, err := normalizeURL(u)
	if err != nil {
		return nil, fmt.Errorf("Invalid URL: %q", input)
	}
	return serializeURL(u), nil
}

// cleanURLInput removes what the URL parser ignores: leading and trailing C0 controls and
// spaces, and tabs and newlines anywhere.
func cleanURLInput(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	if strings.ContainsAny(s, "\t\n\r") {
		s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	}
	return s
}

// parseAbsoluteURL parses and normalizes a URL that must carry its scheme.
func parseAbsoluteURL(s string) (*neturl.URL, error) {
	u, err := neturl.Parse(s)
	if err != nil {
		return nil, err
	}
	return normalizeURL(u)
}

// defaultPort reports the default port of a special scheme, "" for file; ok is false for a
// scheme that is not special.
func defaultPort(scheme string) (port string, ok bool) {
	switch scheme {
	case "http", "ws":
		return "80", true
	case "https", "wss":
		return "443", true
	case "ftp":
		return "21", true
	case "file":
		return "", true
	}
	return "", false
}

// normalizeURL checks u and brings it to the browser's canonical form.
func normalizeURL(u *neturl.URL) (*neturl.URL, error) {
	if u.Scheme == "" {
		return nil, fmt.Errorf("no scheme")
	}
	defPort, special := defaultPort(u.Scheme)
	if special && u.Opaque != "" {
		// "https:example.com" means "https://example.com".
		s := u.Scheme + "://" + strings.TrimLeft(u.Opaque, "/")
		if u.RawQuery != "" || u.ForceQuery {
			s += "?" + u.RawQuery
		}
		if u.Fragment != "" {
			s += "#" + u.EscapedFragment()
		}
		v, err := neturl.Parse(s)
		if err != nil {
			return nil, err
		}
		u = v
	}
	host, port := u.Hostname(), u.Port()
	if special && u.Scheme != "file" && host == "" {
		return nil, fmt.Errorf("no host")
	}
	if host != "" && !strings.Contains(host, ":") {
		host = strings.ToLower(host)
		if !isASCII(host) {
			h, err := idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false)).ToASCII(host)
			if err != nil {
				return nil, err
			}
			host = h
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n > 65535 {
			return nil, fmt.Errorf("bad port")
		}
		port = strconv.Itoa(n)
		if special && port == defPort {
			port = ""
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		u.Host = host + ":" + port
	} else {
		u.Host = host
	}
	if u.Opaque == "" {
		p := u.EscapedPath()
		if special && p == "" {
			p = "/"
		}
		if strings.HasPrefix(p, "/") {
			p = removeDotSegments(p)
		}
		if err := setEscapedPath(u, p); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// setEscapedPath sets u's path from its escaped form.
func setEscapedPath(u *neturl.URL, escaped string) error {
	p, err := neturl.PathUnescape(escaped)
	if err != nil {
		return err
	}
	u.Path, u.RawPath = p, escaped
	return nil
}

// removeDotSegments resolves "." and ".." segments of an absolute path (RFC 3986, 5.2.4); unlike
// path.Clean it keeps empty segments and a trailing slash.
func removeDotSegments(p string) string {
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// serializeURL splits a normalized URL into the parts the URL API returns.
func serializeURL(u *neturl.URL) *webURL {
	_, special := defaultPort(u.Scheme)
	w := &webURL{
		protocol:     u.Scheme + ":",
		hostname:     u.Hostname(),
		port:         u.Port(),
		special:      special,
		hasAuthority: special || u.Host != "",
		opaquePath:   u.Opaque != "",
	}
	if strings.Contains(w.hostname, ":") {
		w.hostname = "[" + w.hostname + "]"
	}
	if u.User != nil {
		w.username, w.password, _ = strings.Cut(u.User.String(), ":")
	}
	if w.opaquePath {
		w.pathname = u.Opaque
	} else {
		w.pathname = u.EscapedPath()
	}
	if u.RawQuery != "" {
		w.search = "?" + escapeQuery(u.RawQuery, special)
	}
	if u.Fragment != "" {
		w.hash = "#" + u.EscapedFragment()
	}
	return w
}

// escapeQuery percent-encodes the bytes that the URL standard's query encode set names.
func escapeQuery(q string, special bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c < 0x21 || c > 0x7E || c == '"' || c == '#' || c == '<' || c == '>' || (special && c == '\'') {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
