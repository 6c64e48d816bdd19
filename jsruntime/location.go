package jsruntime

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/dop251/goja"
)

// exceptionLocation returns the position in the user's source of the innermost stack frame of ex
// that belongs to the workflow module, mapped through the bundle's source map: "register threw"
// becomes "file:line: message". Frames of Go functions, of the prelude and other gateway scripts
// (named with the "smithers:" scheme), of the virtual smithers-orchestrator module and of
// esbuild's helpers (positions the source map does not cover, which keep the program's name
// ending in " (bundle)") are skipped. ok is false when no frame qualifies.
func exceptionLocation(ex *goja.Exception) (file string, line, col int, ok bool) {
	if ex == nil {
		return "", 0, 0, false
	}
	for _, frame := range ex.Stack() {
		pos := frame.Position()
		if pos.Line <= 0 || !isUserFile(pos.Filename) {
			continue
		}
		name := pos.Filename
		if name != frame.SrcName() {
			name = unescapeSource(name)
		}
		return name, pos.Line, pos.Column, true
	}
	return "", 0, 0, false
}

// errorValueLocation is exceptionLocation for a value that was not caught as a *goja.Exception,
// such as the reason of a rejected promise (an async register that threw): it reads the stack
// that goja recorded in the Error's "stack" property when the error was created. ok is false
// when v is not an Error or no frame belongs to the user's source. It must run on the goroutine
// of the runtime that owns v.
func errorValueLocation(v goja.Value) (file string, line, col int, ok bool) {
	obj, isObj := v.(*goja.Object)
	if !isObj {
		return "", 0, 0, false
	}
	stack := obj.Get("stack")
	if stack == nil || goja.IsUndefined(stack) || goja.IsNull(stack) {
		return "", 0, 0, false
	}
	for _, l := range strings.Split(stack.String(), "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "at ") {
			continue
		}
		name, line, col, ok := parseStackFrame(strings.TrimPrefix(l, "at "))
		if !ok || !isUserFile(name) {
			continue
		}
		return unescapeSource(name), line, col, true
	}
	return "", 0, 0, false
}

// parseStackFrame parses one frame as goja writes it: "file:line:col(pc)" or
// "funcName (file:line:col(pc))". Native frames ("native", "name (native)") do not parse.
func parseStackFrame(s string) (file string, line, col int, ok bool) {
	named := strings.HasSuffix(s, "))")
	if named {
		s = s[:len(s)-1]
	}
	open := strings.LastIndexByte(s, '(')
	if open < 0 || !strings.HasSuffix(s, ")") {
		return "", 0, 0, false
	}
	s = s[:open] // drop "(pc)"
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, 0, false
	}
	col, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return "", 0, 0, false
	}
	s = s[:i]
	i = strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, 0, false
	}
	line, err = strconv.Atoi(s[i+1:])
	if err != nil {
		return "", 0, 0, false
	}
	file = s[:i]
	if named {
		// The function's name comes first: "register (file".
		j := strings.Index(file, " (")
		if j < 0 {
			return "", 0, 0, false
		}
		file = file[j+2:]
	}
	return file, line, col, file != "" && line > 0
}

// isUserFile reports whether a mapped stack position names a file of the user's module rather
// than code of the gateway (the prelude, the virtual module, esbuild's unmapped helpers).
func isUserFile(name string) bool {
	switch {
	case name == "",
		strings.HasPrefix(name, "<"), // "<eval>", "<native>": no file
		strings.HasPrefix(name, "smithers:"),
		strings.HasPrefix(name, orchestratorNamespace+":"),
		strings.HasSuffix(name, bundleNameSuffix):
		return false
	}
	return true
}

// unescapeSource undoes the URL escaping (of spaces, say) that goja applies when it resolves a
// source-map source against the program's name.
func unescapeSource(name string) string {
	if u, err := url.PathUnescape(name); err == nil {
		return u
	}
	return name
}
