package jsruntime

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/evanw/esbuild/pkg/api"
)

const (
	// moduleGlobal is the globalThis property that evaluating a Bundle's Code assigns the module's
	// exports object to.
	moduleGlobal = "__smithers_module"

	// orchestratorModule is the import path of the virtual module that the host provides; it is
	// resolved into orchestratorNamespace, so esbuild labels it "smithers-orchestrator:smithers-orchestrator"
	// in messages and source maps.
	orchestratorModule    = "smithers-orchestrator"
	orchestratorNamespace = "smithers-orchestrator"

	// orchestratorSource is the whole virtual module: it re-exports what the prelude installed.
	orchestratorSource = "export const SmithersError = globalThis.__smithers_orchestrator.SmithersError;\n"

	// jsxImportSource makes esbuild's automatic JSX runtime import a path under the virtual module,
	// so that any JSX in a workflow module fails the load with an explanation instead of a
	// ReferenceError on React at run time.
	jsxImportSource = orchestratorModule + "/jsx"

	// bundleNameSuffix is appended to Bundle.Path to name the compiled program. Positions that the
	// source map covers resolve to the user's files next to Path; the rest (esbuild's helpers) keep
	// this name, which tells exceptionLocation to skip them.
	bundleNameSuffix = " (bundle)"

	// nodeBuiltinFilter matches bare imports of Node.js built-in modules (and their subpaths).
	nodeBuiltinFilter = `^(assert|async_hooks|buffer|child_process|cluster|console|constants|crypto|dgram|` +
		`diagnostics_channel|dns|domain|events|fs|http|http2|https|inspector|module|net|os|path|perf_hooks|` +
		`process|punycode|querystring|readline|repl|stream|string_decoder|sys|timers|tls|trace_events|tty|` +
		`url|util|v8|vm|wasi|worker_threads|zlib)(/.*)?$`

	// registerHint is how every message about an upstream-only API ends.
	registerHint = "this gateway runs `async (ctx)` workflows registered with " +
		"`gateway.register(key, async (ctx) => ...)`"

	// noNodeHint is how every message about a Node.js built-in module ends.
	noNodeHint = "workflow modules run in the gateway's JavaScript runtime, not Node.js; " +
		"use t.fetch / t.exec inside a task"

	topLevelAwaitMessage = "top-level await is not supported: move it into register(gateway), which may be async"
)

// Bundle is a workflow module compiled into one script for goja.
type Bundle struct {
	Path string // module path as given (for messages)
	Code string // script; evaluating it assigns the module's exports object to globalThis.__smithers_module
	Hash string // lower-case hex SHA-256 of Code
}

// Compile compiles Code for goja. The program carries Code's inline source map, so stack traces
// and exceptionLocation report the user's files (named as Path names them) and original lines.
// The Program is immutable and may be run by several runtimes.
func (b *Bundle) Compile() (*goja.Program, error) {
	prg, err := goja.Compile(b.Path+bundleNameSuffix, b.Code, false)
	if err != nil {
		return nil, fmt.Errorf("compile bundle of %s: %w", b.Path, err)
	}
	return prg, nil
}

// LoadError is a module that cannot be loaded, pointing at the user's file:line.
type LoadError struct {
	File         string
	Line, Column int // 1-based; 0 when unknown
	Message      string
}

// Error returns "file:line:col: message", leaving out the position parts that are unknown.
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// BuildBundle bundles the workflow module at path and its relative imports. A missing file gives
// an error satisfying errors.Is(err, fs.ErrNotExist); a module that cannot be loaded gives a
// *LoadError.
func BuildBundle(path string) (*Bundle, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read workflow module: %w", err)
	}
	return BuildBundleSource(path, string(src))
}

// BuildBundleSource is BuildBundle for a module whose source is held in memory. The loader is
// chosen by path's extension (.mjs, .js, .ts, .jsx, .tsx) and relative imports resolve from
// filepath.Dir(path). The same path and source give the same Code and Hash.
func BuildBundleSource(path, source string) (*Bundle, error) {
	loader, ok := loaderFor(path)
	if !ok {
		return nil, &LoadError{File: path, Message: fmt.Sprintf(
			"unsupported module extension %q: use .mjs, .js, .ts, .jsx or .tsx", filepath.Ext(path))}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve workflow module path: %w", err)
	}
	dir := filepath.Dir(abs)
	res := api.Build(api.BuildOptions{
		LogLevel: api.LogLevelSilent,
		Stdin: &api.StdinOptions{
			Contents:   source,
			ResolveDir: dir,
			Sourcefile: filepath.Base(abs),
			Loader:     loader,
		},
		// Names in messages and in the source map are relative to the module's directory, so the
		// code (and its hash) does not depend on where the gateway was started from.
		AbsWorkingDir:  dir,
		Bundle:         true,
		Write:          false,
		Format:         api.FormatIIFE,
		GlobalName:     moduleGlobal,
		Platform:       api.PlatformNeutral,
		MainFields:     []string{"module", "main"},
		Target:         api.ES2017,
		Supported:      map[string]bool{"bigint": true},
		KeepNames:      true,
		Sourcemap:      api.SourceMapInline,
		SourcesContent: api.SourcesContentExclude,
		LegalComments:  api.LegalCommentsInline,
		// ASCII output keeps goja's byte columns equal to the source map's UTF-16 columns.
		Charset:         api.CharsetASCII,
		JSX:             api.JSXAutomatic,
		JSXImportSource: jsxImportSource,
		Plugins:         []api.Plugin{modulePlugin()},
	})
	if err := loadErrorFrom(path, res); err != nil {
		return nil, err
	}
	if len(res.OutputFiles) != 1 {
		return nil, fmt.Errorf("bundle %s: esbuild produced %d output files, want 1", path, len(res.OutputFiles))
	}
	code, err := assignToGlobalThis(string(res.OutputFiles[0].Contents))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	sum := sha256.Sum256([]byte(code))
	return &Bundle{Path: path, Code: code, Hash: hex.EncodeToString(sum[:])}, nil
}

// loaderFor chooses the esbuild loader for an entry point by its extension.
func loaderFor(path string) (api.Loader, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".mjs", ".js":
		return api.LoaderJS, true
	case ".ts":
		return api.LoaderTS, true
	case ".jsx":
		return api.LoaderJSX, true
	case ".tsx":
		return api.LoaderTSX, true
	}
	return api.LoaderNone, false
}

// assignToGlobalThis turns esbuild's "var __smithers_module = (() => {" into an assignment to a
// property of globalThis, so the exports are found however the script is evaluated. The first
// line carries no source mapping, so changing its length does not disturb the source map.
func assignToGlobalThis(code string) (string, error) {
	const decl = "var " + moduleGlobal + " = "
	i := strings.Index(code, decl)
	if i < 0 || (i > 0 && code[i-1] != '\n') {
		return "", errors.New("esbuild output does not declare " + moduleGlobal)
	}
	return code[:i] + "globalThis." + moduleGlobal + " = " + code[i+len(decl):], nil
}

// resolveMarker is the PluginData of a resolution that modulePlugin asks esbuild for itself; the
// plugin's own callbacks step aside for it, which prevents recursion.
type resolveMarker struct{}

// modulePlugin provides the smithers-orchestrator virtual module and turns imports that cannot
// work in the gateway (Node.js built-ins, React, upstream-only APIs) into clear errors at the
// import's file:line.
func modulePlugin() api.Plugin {
	return api.Plugin{Name: "smithers", Setup: func(build api.PluginBuild) {
		build.OnResolve(api.OnResolveOptions{Filter: `^` + orchestratorModule + `(/.*)?$`},
			func(args api.OnResolveArgs) (api.OnResolveResult, error) {
				switch {
				case args.Path == orchestratorModule:
					return api.OnResolveResult{Path: orchestratorModule, Namespace: orchestratorNamespace}, nil
				case strings.HasPrefix(args.Path, jsxImportSource+"/"):
					return resolveError(jsxMessage()), nil
				default:
					return resolveError(upstreamMessage(args.Path)), nil
				}
			})
		build.OnLoad(api.OnLoadOptions{Filter: `.*`, Namespace: orchestratorNamespace},
			func(api.OnLoadArgs) (api.OnLoadResult, error) {
				src := orchestratorSource
				return api.OnLoadResult{Contents: &src, Loader: api.LoaderJS}, nil
			})
		build.OnResolve(api.OnResolveOptions{Filter: `^(react|react-dom)(/.*)?$`},
			func(args api.OnResolveArgs) (api.OnResolveResult, error) {
				return resolveError(upstreamMessage(args.Path)), nil
			})
		build.OnResolve(api.OnResolveOptions{Filter: `^node:`},
			func(args api.OnResolveArgs) (api.OnResolveResult, error) {
				return resolveError(args.Path + " is not available: " + noNodeHint), nil
			})
		// A bare built-in name is refused unless a package of that name is installed (npm has
		// browser polyfills such as "events" or "buffer", which run fine in goja).
		build.OnResolve(api.OnResolveOptions{Filter: nodeBuiltinFilter},
			func(args api.OnResolveArgs) (api.OnResolveResult, error) {
				if _, again := args.PluginData.(resolveMarker); again {
					return api.OnResolveResult{}, nil
				}
				r := build.Resolve(args.Path, api.ResolveOptions{
					Importer:   args.Importer,
					Namespace:  args.Namespace,
					ResolveDir: args.ResolveDir,
					Kind:       args.Kind,
					PluginData: resolveMarker{},
				})
				if len(r.Errors) > 0 {
					return resolveError(args.Path + " is not available: " + noNodeHint), nil
				}
				sideEffects := api.SideEffectsTrue
				if !r.SideEffects {
					sideEffects = api.SideEffectsFalse
				}
				return api.OnResolveResult{Path: r.Path, Namespace: r.Namespace, External: r.External,
					SideEffects: sideEffects, Suffix: r.Suffix, PluginData: r.PluginData}, nil
			})
	}}
}

// resolveError fails a resolution; esbuild reports it at the import statement.
func resolveError(text string) api.OnResolveResult {
	return api.OnResolveResult{Errors: []api.Message{{Text: text}}}
}

// upstreamMessage explains that name belongs to upstream Smithers, not to this gateway.
func upstreamMessage(name string) string {
	return fmt.Sprintf("`%s` is an upstream Smithers API (JSX workflows) that this gateway does not provide: %s",
		name, registerHint)
}

// jsxMessage explains that JSX workflows are not supported.
func jsxMessage() string {
	return "JSX needs React, an upstream Smithers API (JSX workflows) that this gateway does not provide: " +
		registerHint
}

// loadErrorFrom converts the first error of a build into a *LoadError at the user's position, or
// returns nil when the build succeeded. A reference to a missing export of the virtual module is
// only a warning for esbuild (with `import * as`); it is an error here.
func loadErrorFrom(path string, res api.BuildResult) error {
	msgs := res.Errors
	for _, w := range res.Warnings {
		if strings.Contains(w.Text, orchestratorNamespace+":"+orchestratorModule) {
			msgs = append(msgs, w)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	m := msgs[0]
	e := &LoadError{File: path, Message: rewriteMessage(m.Text)}
	if loc := m.Location; loc != nil {
		e.File = userFile(path, loc)
		e.Line = loc.Line
		col := loc.Column
		if col > len(loc.LineText) {
			col = len(loc.LineText)
		}
		// esbuild counts bytes from 0; people count characters from 1.
		e.Column = utf8.RuneCountInString(loc.LineText[:col]) + 1
	}
	switch n := len(msgs) - 1; {
	case n == 1:
		e.Message += " (and 1 more error)"
	case n > 1:
		e.Message += fmt.Sprintf(" (and %d more errors)", n)
	}
	return e
}

// userFile names the file of an esbuild location the way the user named the module: esbuild's
// names are relative to the module's directory.
func userFile(path string, loc *api.Location) string {
	if loc.File == "" {
		return path
	}
	if loc.Namespace != "" && loc.Namespace != "file" {
		return loc.Namespace + ":" + loc.File
	}
	f := filepath.FromSlash(loc.File)
	if filepath.IsAbs(f) {
		return f
	}
	return filepath.Join(filepath.Dir(path), f)
}

// rewriteMessage replaces esbuild's wording where the gateway has a more useful explanation.
func rewriteMessage(text string) string {
	switch {
	case strings.HasPrefix(strings.ToLower(text), "top-level await"):
		return topLevelAwaitMessage
	case strings.HasPrefix(text, "The JSX syntax extension is not currently enabled"):
		return jsxMessage()
	case strings.Contains(text, `"`+orchestratorNamespace+":"+orchestratorModule+`"`):
		// `No matching export in "ns:path" for import "X"`, or the `import * as` warning
		// `Import "X" will always be undefined because there is no matching export in "ns:path"`.
		name := missingExportName(text)
		if name == "" {
			return text
		}
		if name == "default" {
			return `"smithers-orchestrator" has no default export: use import { SmithersError } from "smithers-orchestrator"; ` +
				registerHint
		}
		return upstreamMessage(name) + `; "smithers-orchestrator" exports only SmithersError`
	}
	return text
}

// missingExportName extracts the imported name from esbuild's missing-export messages.
func missingExportName(text string) string {
	const forImport = ` for import "`
	if i := strings.LastIndex(text, forImport); i >= 0 {
		rest := text[i+len(forImport):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			return rest[:j]
		}
	}
	const importPrefix = `Import "`
	if strings.HasPrefix(text, importPrefix) {
		rest := text[len(importPrefix):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			return rest[:j]
		}
	}
	return ""
}
