package jsruntime

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// TextEncoder and TextDecoder (UTF-8 only, as on the web), installed by installGlobals.

// encoderState marks a TextEncoder instance.
type encoderState struct{}

// initEncoder returns the binding that the TextEncoder constructor calls with its new instance.
func (g *globals) initEncoder(slot *goja.Symbol) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value {
		g.attachState(call.Argument(0), slot, &encoderState{})
		return goja.Undefined()
	}
}

// textEncoderPrototype defines TextEncoder's members (UTF-8 only, as on the web).
func (g *globals) textEncoderPrototype(proto *goja.Object, slot *goja.Symbol) error {
	rt := g.rt
	check := func(this goja.Value) { state[*encoderState](rt, this, slot, "TextEncoder") }
	if err := g.getter(proto, "encoding", func(call goja.FunctionCall) goja.Value {
		check(call.This)
		return rt.ToValue("utf-8")
	}); err != nil {
		return err
	}
	if err := g.method(proto, "encode", 0, func(call goja.FunctionCall) goja.Value {
		check(call.This)
		s := ""
		if v := call.Argument(0); !goja.IsUndefined(v) {
			s = g.toUSVString(v, "TextEncoder.encode: input")
		}
		return g.newUint8Array([]byte(s))
	}); err != nil {
		return err
	}
	if err := g.method(proto, "encodeInto", 2, func(call goja.FunctionCall) goja.Value {
		check(call.This)
		if len(call.Arguments) < 2 {
			panic(rt.NewTypeError("TextEncoder.encodeInto: 2 arguments required, but only %d present", len(call.Arguments)))
		}
		src := g.toJSString(call.Argument(0), "TextEncoder.encodeInto: source")
		dst, ok := g.uint8ArrayBytes(call.Argument(1))
		if !ok {
			panic(rt.NewTypeError("TextEncoder.encodeInto: destination must be a Uint8Array"))
		}
		read, written := encodeInto(src, dst)
		res := rt.NewObject()
		_ = res.Set("read", read)
		_ = res.Set("written", written)
		return res
	}); err != nil {
		return err
	}
	return proto.DefineDataPropertySymbol(goja.SymToStringTag, rt.ToValue("TextEncoder"), goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// encodeInto writes as many whole UTF-8 characters of src as fit into dst. It returns the UTF-16
// code units read and the bytes written; unpaired surrogates become U+FFFD.
func encodeInto(src goja.String, dst []byte) (read, written int) {
	n := src.Length()
	var buf [utf8.UTFMax]byte
	for read < n {
		r, units := rune(src.CharAt(read)), 1
		switch {
		case utf16.IsSurrogate(r):
			if r < 0xDC00 && read+1 < n {
				if r2 := rune(src.CharAt(read + 1)); r2 >= 0xDC00 && r2 <= 0xDFFF {
					r, units = utf16.DecodeRune(r, r2), 2
					break
				}
			}
			r = utf8.RuneError
		}
		size := utf8.EncodeRune(buf[:], r)
		if written+size > len(dst) {
			break
		}
		copy(dst[written:], buf[:size])
		written += size
		read += units
	}
	return read, written
}

// decoderState is the state of one TextDecoder: its options and, while streaming, the bytes of
// an unfinished character.
type decoderState struct {
	fatal     bool
	ignoreBOM bool
	utf8      utf8Decoder
}

// initDecoder returns the binding that the TextDecoder constructor calls with its new instance
// and its (label, options) arguments.
func (g *globals) initDecoder(slot *goja.Symbol) func(goja.FunctionCall) goja.Value {
	rt := g.rt
	return func(call goja.FunctionCall) goja.Value {
		st := &decoderState{}
		if label := call.Argument(1); !goja.IsUndefined(label) {
			l := strings.ToLower(strings.Trim(g.toUSVString(label, "TextDecoder: label"), "\t\n\f\r "))
			if l != "utf-8" && l != "utf8" && l != "unicode-1-1-utf-8" {
				panic(g.newError(g.rangeError, fmt.Sprintf(
					"TextDecoder: the encoding %q is not supported; this runtime decodes utf-8 only", l)))
			}
		}
		if opts := call.Argument(2); !goja.IsUndefined(opts) && !goja.IsNull(opts) {
			o, ok := opts.(*goja.Object)
			if !ok {
				panic(rt.NewTypeError("TextDecoder: options must be an object"))
			}
			st.fatal = boolOption(o, "fatal")
			st.ignoreBOM = boolOption(o, "ignoreBOM")
		}
		st.utf8.reset()
		g.attachState(call.Argument(0), slot, st)
		return goja.Undefined()
	}
}

// textDecoderPrototype defines TextDecoder's members (UTF-8 only).
func (g *globals) textDecoderPrototype(proto *goja.Object, slot *goja.Symbol) error {
	rt := g.rt
	get := func(this goja.Value) *decoderState { return state[*decoderState](rt, this, slot, "TextDecoder") }
	for _, attr := range []struct {
		name string
		get  func(*decoderState) goja.Value
	}{
		{"encoding", func(*decoderState) goja.Value { return rt.ToValue("utf-8") }},
		{"fatal", func(st *decoderState) goja.Value { return rt.ToValue(st.fatal) }},
		{"ignoreBOM", func(st *decoderState) goja.Value { return rt.ToValue(st.ignoreBOM) }},
	} {
		if err := g.getter(proto, attr.name, func(call goja.FunctionCall) goja.Value { return attr.get(get(call.This)) }); err != nil {
			return err
		}
	}
	if err := g.method(proto, "decode", 0, func(call goja.FunctionCall) goja.Value {
		st := get(call.This)
		var input []byte
		if v := call.Argument(0); !goja.IsUndefined(v) {
			b, ok := g.bufferSourceBytes(v)
			if !ok {
				panic(rt.NewTypeError("TextDecoder.decode: input must be an ArrayBuffer, a typed array or a DataView"))
			}
			input = b
		}
		stream := false
		if opts := call.Argument(1); !goja.IsUndefined(opts) && !goja.IsNull(opts) {
			o, ok := opts.(*goja.Object)
			if !ok {
				panic(rt.NewTypeError("TextDecoder.decode: options must be an object"))
			}
			stream = boolOption(o, "stream")
		}
		out, ok := st.utf8.decode(input, !stream, st.ignoreBOM, st.fatal)
		if !ok {
			st.utf8.reset()
			panic(rt.NewTypeError("TextDecoder.decode: the encoded data is not valid utf-8"))
		}
		return rt.ToValue(out)
	}); err != nil {
		return err
	}
	return proto.DefineDataPropertySymbol(goja.SymToStringTag, rt.ToValue("TextDecoder"), goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// boolOption reads a dictionary member the way Web IDL converts booleans.
func boolOption(o *goja.Object, name string) bool {
	v := o.Get(name)
	return v != nil && v.ToBoolean()
}

// utf8Decoder is the WHATWG UTF-8 decoder: each maximal ill-formed subsequence becomes one U+FFFD,
// and an unfinished character is kept between streaming calls.
type utf8Decoder struct {
	pending      []byte // bytes of the unfinished character
	needed       int    // continuation bytes still needed
	lower, upper byte   // bounds of the next continuation byte
	cp           rune
	bomSeen      bool // the stream's start has been passed (BOM handled)
}

// reset readies d for a new stream.
func (d *utf8Decoder) reset() {
	*d = utf8Decoder{lower: 0x80, upper: 0xBF}
}

// decode decodes input after the pending bytes. With flush, an unfinished character at the end
// is an error and the decoder is reset for the next stream. It reports false on the first error
// when fatal is set.
func (d *utf8Decoder) decode(input []byte, flush, ignoreBOM, fatal bool) (string, bool) {
	var b strings.Builder
	b.Grow(len(input))
	bad := func() bool {
		if fatal {
			return false
		}
		b.WriteRune(utf8.RuneError)
		return true
	}
	for i := 0; i < len(input); i++ {
		c := input[i]
		if d.needed == 0 {
			switch {
			case c <= 0x7F:
				b.WriteByte(c)
			case c >= 0xC2 && c <= 0xDF:
				d.needed, d.cp = 1, rune(c&0x1F)
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					d.lower = 0xA0
				} else if c == 0xED {
					d.upper = 0x9F
				}
				d.needed, d.cp = 2, rune(c&0x0F)
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					d.lower = 0x90
				} else if c == 0xF4 {
					d.upper = 0x8F
				}
				d.needed, d.cp = 3, rune(c&0x07)
			default:
				if !bad() {
					return "", false
				}
			}
			continue
		}
		if c < d.lower || c > d.upper {
			d.needed, d.cp, d.lower, d.upper = 0, 0, 0x80, 0xBF
			if !bad() {
				return "", false
			}
			i-- // the byte starts over
			continue
		}
		d.lower, d.upper = 0x80, 0xBF
		d.cp = d.cp<<6 | rune(c&0x3F)
		d.needed--
		if d.needed == 0 {
			b.WriteRune(d.cp)
			d.cp = 0
		}
	}
	if flush && d.needed > 0 {
		d.needed, d.cp, d.lower, d.upper = 0, 0, 0x80, 0xBF
		if !bad() {
			return "", false
		}
	}
	out := b.String()
	if !d.bomSeen && len(out) > 0 {
		if !ignoreBOM {
			out = strings.TrimPrefix(out, "\uFEFF")
		}
		d.bomSeen = true
	}
	if flush {
		d.reset()
	}
	return out, true
}
