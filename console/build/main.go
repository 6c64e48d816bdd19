// Command build bundles the operator console's sources (console/src) into
// the files the gateway embeds and serves (api/consoleassets): client.js
// (one minified ES module), client.css and favicon.svg.
//
// The build is reproducible: fixed esbuild options, no timestamps, no
// source maps, no absolute paths in the output, outputs written in sorted
// order. Its test rebuilds in memory and fails when the committed files
// differ from their sources. Run it with
//
//	go generate ./api
//
// (or go run ./console/build from anywhere in the module). It needs no
// Node and no network: the console has no dependencies.
//
// The bundle imports one virtual module, smithers:scopes, generated here
// from api/auth's scope rules, so that the console shows an action
// disabled exactly when the gateway would refuse it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	esbuild "github.com/evanw/esbuild/pkg/api"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
)

// outDir is where the built files go, relative to the module root.
const outDir = "api/consoleassets"

func main() {
	root, err := moduleRoot()
	if err == nil {
		err = write(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "console build:", err)
		os.Exit(1)
	}
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// write builds and replaces the contents of outDir with the result.
func write(root string) error {
	files, err := Build(root)
	if err != nil {
		return err
	}
	dir := filepath.Join(root, outDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range old {
		if _, keep := files[e.Name()]; !keep {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for _, name := range sortedNames(files) {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build bundles console/src under root and returns the served files by
// name. The same sources always give the same bytes.
func Build(root string) (map[string][]byte, error) {
	src := filepath.Join(root, "console")
	table, err := scopeModule()
	if err != nil {
		return nil, err
	}
	res := esbuild.Build(esbuild.BuildOptions{
		EntryPoints:       []string{"src/main.ts"},
		AbsWorkingDir:     src,
		Outdir:            "out",
		EntryNames:        "client",
		Bundle:            true,
		Write:             false,
		Format:            esbuild.FormatESModule,
		Platform:          esbuild.PlatformBrowser,
		Target:            esbuild.ES2022,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		TreeShaking:       esbuild.TreeShakingTrue,
		Charset:           esbuild.CharsetUTF8,
		LegalComments:     esbuild.LegalCommentsNone,
		Sourcemap:         esbuild.SourceMapNone,
		LogLevel:          esbuild.LogLevelSilent,
		Plugins:           []esbuild.Plugin{virtualModule("smithers:scopes", table)},
	})
	if len(res.Errors) > 0 {
		var b strings.Builder
		for _, m := range res.Errors {
			if m.Location != nil {
				fmt.Fprintf(&b, "\n%s:%d:%d: %s", m.Location.File, m.Location.Line, m.Location.Column, m.Text)
			} else {
				fmt.Fprintf(&b, "\n%s", m.Text)
			}
		}
		return nil, fmt.Errorf("esbuild:%s", b.String())
	}
	files := map[string][]byte{}
	for _, f := range res.OutputFiles {
		name := filepath.Base(f.Path)
		if name != "client.js" && name != "client.css" {
			return nil, fmt.Errorf("unexpected esbuild output %s", name)
		}
		files[name] = f.Contents
	}
	if files["client.js"] == nil || files["client.css"] == nil {
		return nil, errors.New("esbuild produced no client.js or no client.css (main.ts must import the styles)")
	}
	icon, err := os.ReadFile(filepath.Join(src, "src", "favicon.svg"))
	if err != nil {
		return nil, err
	}
	files["favicon.svg"] = icon
	return files, nil
}

// virtualModule resolves an import of name to a JavaScript module with the
// given contents.
func virtualModule(name, contents string) esbuild.Plugin {
	return esbuild.Plugin{Name: name, Setup: func(b esbuild.PluginBuild) {
		b.OnResolve(esbuild.OnResolveOptions{Filter: "^" + strings.ReplaceAll(name, ":", "\\:") + "$"},
			func(esbuild.OnResolveArgs) (esbuild.OnResolveResult, error) {
				return esbuild.OnResolveResult{Path: name, Namespace: "smithers-virtual"}, nil
			})
		b.OnLoad(esbuild.OnLoadOptions{Filter: ".*", Namespace: "smithers-virtual"},
			func(esbuild.OnLoadArgs) (esbuild.OnLoadResult, error) {
				return esbuild.OnLoadResult{Contents: &contents, Loader: esbuild.LoaderJS}, nil
			})
	}}
}

// consoleMethods are the methods the console calls (over HTTP, or over
// WebSocket for streamRunEvents). The client refuses to ask about any
// other, so a new call cannot silently go unchecked.
var consoleMethods = []string{
	"attempts.list", "cancelRun", "cronCreate", "cronDelete", "cronList", "cronRun", "getNodeOutput", "getRun",
	"launchRun", "listApprovals", "listRuns", "listWorkflows", "resumeRun", "streamRunEvents", "submitApproval", "submitSignal",
}

// methodGrants is one method's entry in the scope table.
type methodGrants struct {
	// RequiredScope is what the gateway's scope gate asks for.
	RequiredScope string `json:"requiredScope"`
	// Grants are the single grant strings that authorise the method.
	Grants []string `json:"grants"`
}

// scopeTable derives, from api/auth, for each console method the scope it
// requires and every grant string that authorises it on its own: a token
// may call m iff one of its trimmed grants is in table[m].Grants. It is
// exhaustive: a grant authorises m only by being "*", "admin", a typed
// scope, a legacy ranked grant, m itself or a "<prefix>.*" of m, and every
// such candidate is put to auth.HasScope.
func scopeTable() map[string]methodGrants {
	fixed := []string{"*", "admin", "read", "execute", "approve",
		auth.ScopeRunRead, auth.ScopeRunWrite, auth.ScopeRunAdmin, auth.ScopeApprovalSubmit,
		auth.ScopeSignalSubmit, auth.ScopeCronRead, auth.ScopeCronWrite, auth.ScopeObservabilityRead}
	out := map[string]methodGrants{}
	for _, name := range consoleMethods {
		candidates := append([]string{name}, fixed...)
		for i, r := range name {
			if r == '.' {
				candidates = append(candidates, name[:i+1]+"*")
			}
		}
		seen := map[string]bool{}
		grants := []string{}
		for _, g := range candidates {
			if !seen[g] && auth.HasScope([]string{g}, name) {
				grants = append(grants, g)
			}
			seen[g] = true
		}
		sort.Strings(grants)
		out[name] = methodGrants{RequiredScope: auth.RequiredScope(name), Grants: grants}
	}
	return out
}

// approvalScopeNames are the allowedScopes entries the console can judge
// itself: the typed scopes and "approve". Any other entry resolves through
// the method registry, and the console leaves it to the gateway.
var approvalScopeNames = []string{auth.ScopeRunRead, auth.ScopeRunWrite, auth.ScopeRunAdmin, auth.ScopeApprovalSubmit,
	auth.ScopeSignalSubmit, auth.ScopeCronRead, auth.ScopeCronWrite, auth.ScopeObservabilityRead, "approve"}

// approvalScopeTable maps each of approvalScopeNames to every single grant
// that satisfies it as an approval's allowedScopes entry
// (auth.ApprovalScopesSatisfied).
func approvalScopeTable() map[string][]string {
	out := map[string][]string{}
	for _, name := range approvalScopeNames {
		grants := []string{}
		for _, g := range append([]string{"*", "admin", "read", "execute", "approve"}, approvalScopeNames...) {
			if !slices.Contains(grants, g) && auth.ApprovalScopesSatisfied([]string{g}, []string{name}) {
				grants = append(grants, g)
			}
		}
		sort.Strings(grants)
		out[name] = grants
	}
	return out
}

// scopeModule is the source of smithers:scopes.
func scopeModule() (string, error) {
	// Map keys are sorted by encoding/json: a stable output.
	methods, err := json.Marshal(scopeTable())
	if err != nil {
		return "", err
	}
	approvals, err := json.Marshal(approvalScopeTable())
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	buf.WriteString("// Generated by console/build from api/auth.\nexport const methodScopes = ")
	buf.Write(methods)
	buf.WriteString(";\nexport const approvalScopes = ")
	buf.Write(approvals)
	buf.WriteString(";\n")
	return buf.String(), nil
}
