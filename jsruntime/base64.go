package jsruntime

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/dop251/goja"
)

// atob and btoa (browser semantics), installed by installGlobals.

// atob decodes base64 into a string of code units 0-255 (the browser's forgiving-base64 decode).
func (g *globals) atob(call goja.FunctionCall) goja.Value {
	if len(call.Arguments) < 1 {
		panic(g.rt.NewTypeError("atob: 1 argument required, but only 0 present"))
	}
	s := g.toJSString(call.Argument(0), "atob: data")
	var clean strings.Builder
	for i := 0; i < s.Length(); i++ {
		c := s.CharAt(i)
		switch c {
		case '\t', '\n', '\f', '\r', ' ':
			continue
		}
		if c > 0x7F {
			panic(g.invalidCharacter("atob: the string to be decoded is not correctly encoded"))
		}
		clean.WriteByte(byte(c))
	}
	data := clean.String()
	if len(data)%4 == 0 {
		data = strings.TrimSuffix(data, "=")
		data = strings.TrimSuffix(data, "=")
	}
	if len(data)%4 == 1 || strings.ContainsRune(data, '=') {
		panic(g.invalidCharacter("atob: the string to be decoded is not correctly encoded"))
	}
	raw, err := base64.RawStdEncoding.DecodeString(data)
	if err != nil {
		panic(g.invalidCharacter("atob: the string to be decoded is not correctly encoded"))
	}
	runes := make([]rune, len(raw))
	for i, c := range raw {
		runes[i] = rune(c)
	}
	return g.rt.ToValue(string(runes))
}

// btoa encodes a string of code units 0-255 as base64.
func (g *globals) btoa(call goja.FunctionCall) goja.Value {
	if len(call.Arguments) < 1 {
		panic(g.rt.NewTypeError("btoa: 1 argument required, but only 0 present"))
	}
	s := g.toJSString(call.Argument(0), "btoa: data")
	raw := make([]byte, s.Length())
	for i := range raw {
		c := s.CharAt(i)
		if c > 0xFF {
			panic(g.invalidCharacter(fmt.Sprintf(
				"btoa: the string to be encoded contains characters outside of the Latin1 range (at index %d)", i)))
		}
		raw[i] = byte(c)
	}
	return g.rt.ToValue(base64.StdEncoding.EncodeToString(raw))
}
