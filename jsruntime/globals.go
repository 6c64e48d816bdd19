package jsruntime

import (
	_ "embed"
	"fmt"
	"reflect"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/url"
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
const webClassesName = "smithers:webclasses.js"

// webClassesSource evaluates to a function that builds the URL, TextEncoder and TextDecoder
// classes around Go bindings. They are JavaScript classes so that calling them without `new` is
// a TypeError and subclassing works.
//
// URL is ours rather than goja_nodejs's, whose URL drops a path's trailing slash
// ("https://h/a/" becomes "https://h/a"), resolves a relative reference against the base's root,
// leaves the port out of origin and does not show searchParams changes in href: each of those
// would send a workflow's request to the wrong place. The parsing is Go's (parseURL); the
// query's list view is goja_nodejs's URLSearchParams, kept in step with the URL both ways.
//
//go:embed webclasses.js
var webClassesSource string

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
