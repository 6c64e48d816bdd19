package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartupFailuresNameFileAndLine: a module that cannot be loaded ends
// start-up with a non-zero exit and a message naming gateway.mjs:<line>,
// before the gateway listens.
func TestStartupFailuresNameFileAndLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		src  string
		want []string // substrings of stderr besides the location
		line string
	}{
		{
			name: "syntax error",
			src:  "export default function register(gateway) {\n  gateway.register(\"a\", async (ctx) => 1;\n}\n",
			line: "2",
		},
		{
			name: "register throws",
			src:  "export default function register(gateway) {\n  // about to fail\n  throw new Error(\"boom at register\");\n}\n",
			want: []string{"boom at register"},
			line: "3",
		},
		{
			name: "duplicate workflow key",
			src: "export default function register(gateway) {\n  gateway.register(\"dup\", async () => 1);\n" +
				"  gateway.register(\"dup\", async () => 2);\n}\n",
			want: []string{`"dup"`, "duplicate"},
			line: "3",
		},
		{
			name: "top-level await",
			src:  "// loads config\nconst config = await Promise.resolve({});\nexport default function register(gateway) {}\n",
			want: []string{"top-level await", "register"},
			line: "2",
		},
		{
			name: "node import",
			src:  "// reads files\nimport fs from \"node:fs\";\nexport default function register(gateway) {}\n",
			want: []string{"node:fs"},
			line: "2",
		},
		{
			name: "register never returns",
			src:  "export default function register(gateway) {\n  gateway.register(\"a\", async () => 1);\n  for (let n = 0; ; n++) { gateway[n % 2] = n; }\n}\n",
			want: []string{"turn budget"},
			line: "3",
		},
		{
			name: "upstream JSX API",
			src:  "import { createSmithers } from \"smithers-orchestrator\";\nexport default function register(gateway) {}\n",
			want: []string{"createSmithers", "async (ctx)"},
			line: "1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			module := writeModule(t, tc.src)
			data := t.TempDir()
			env := append(baseEnv(data), "PORT=0", "HOST=127.0.0.1", "SMITHERS_GATEWAY_MODULE="+module,
				"SMITHERS_DB_PATH="+filepath.Join(data, "smithers.db"), "SMITHERS_TOKEN_STORE="+filepath.Join(data, "tokens.json"),
				"SMITHERS_GATEWAY_TURN_BUDGET_MS=500")
			code, stdout, stderr := runToExit(t, data, env, "gateway")
			if code == 0 {
				t.Errorf("exit status 0, want non-zero")
			}
			if strings.Contains(stdout, "listening on") {
				t.Errorf("the gateway listened despite a broken module; stdout:\n%s", stdout)
			}
			for _, w := range append([]string{"gateway.mjs:" + tc.line}, tc.want...) {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestMissingModuleStartsEmpty: a missing module file is not fatal: the
// gateway listens with no workflows and says so in a warning.
func TestMissingModuleStartsEmpty(t *testing.T) {
	t.Parallel()
	module := filepath.Join(t.TempDir(), "nowhere", "gateway.mjs")
	g := startGateway(t, module)

	if !logSoon(g, "WARN", module) {
		t.Errorf("no WARN log line names the missing module %s", module)
	}
	assertJSON(t, "listWorkflows", g.rpc("listWorkflows", map[string]any{}), `[]`)
	status, f := postRPC(t, g.URL, g.Token, "launchRun", map[string]any{"workflow": "quickstart", "input": map[string]any{}})
	if status != http.StatusNotFound || f.OK || f.Error == nil || f.Error.Code != "NOT_FOUND" {
		t.Fatalf("launchRun of an unregistered workflow: HTTP %d, frame %+v %+v; want 404 NOT_FOUND", status, f, f.Error)
	}
}

var (
	devTokenLine = regexp.MustCompile(`Dev token:\s+(\S+)`)
	devCurlLine  = regexp.MustCompile(`curl -s (\S+) -H "Authorization: Bearer ([^"]+)" -d '([^']*)'`)
)

// TestDevPrintsWorkingCurlLine runs `smithers dev` in an empty directory:
// it prints its URL, a dev token and a curl line; the curl line's request
// launches the quickstart run, and the token survives a restart.
func TestDevPrintsWorkingCurlLine(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, gatewayConfig{command: "dev"})

	curl := g.waitStdout(func(l string) bool { return devCurlLine.MatchString(l) })
	tokLine := g.waitStdout(func(l string) bool { return devTokenLine.MatchString(l) })
	m := devCurlLine.FindStringSubmatch(curl)
	url, token, body := m[1], m[2], m[3]
	g.Token = devTokenLine.FindStringSubmatch(tokLine)[1]
	if url != g.URL+"/v1/rpc/launchRun" || token != g.Token {
		t.Fatalf("curl line %q does not use the printed URL %s and token %s", curl, g.URL, g.Token)
	}

	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("the curl line's request: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var f frame
	if err := json.Unmarshal(raw, &f); err != nil || resp.StatusCode != http.StatusOK || !f.OK {
		t.Fatalf("the curl line's request answered %d: %s", resp.StatusCode, raw)
	}
	var launched struct {
		RunID    string `json:"runId"`
		Workflow string `json:"workflow"`
	}
	decode(t, f.Payload, &launched)
	if launched.Workflow != "quickstart" || launched.RunID == "" {
		t.Fatalf("launchRun payload = %s, want a quickstart run", f.Payload)
	}
	r := g.waitStatus(launched.RunID, "waiting-approval")
	if r.WorkflowKey != "quickstart" {
		t.Errorf("run workflowKey = %q, want quickstart", r.WorkflowKey)
	}
	if _, err := os.Stat(g.DBPath); err != nil {
		t.Errorf("dev data is not in ./.smithers of the working directory: %v", err)
	}

	// The dev token is kept across restarts.
	if code := g.terminate(); code != 0 {
		t.Fatalf("smithers dev exited %d on SIGTERM", code)
	}
	g.restart()
	again := devTokenLine.FindStringSubmatch(g.waitStdout(func(l string) bool { return devTokenLine.MatchString(l) }))[1]
	if again != g.Token {
		t.Errorf("dev token changed across a restart: %s then %s", g.Token, again)
	}
	if s := g.getRun(launched.RunID).Status; s != "waiting-approval" {
		t.Errorf("after a restart the dev run is %s, want waiting-approval", s)
	}
}

// TestSigtermWhileRegistering: SIGTERM while an async register(gateway) is
// still settling ends the process at once with status 0, not when the 30 s
// register timeout runs out.
func TestSigtermWhileRegistering(t *testing.T) {
	t.Parallel()
	module := writeModule(t, "export default async function register(gateway) {\n  await new Promise(() => {});\n}\n")
	data := t.TempDir()
	env := append(baseEnv(data), "PORT=0", "HOST=127.0.0.1", "SMITHERS_GATEWAY_MODULE="+module,
		"SMITHERS_DB_PATH="+filepath.Join(data, "smithers.db"), "SMITHERS_TOKEN_STORE="+filepath.Join(data, "tokens.json"))
	p, err := spawn(data, env, "gateway")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	time.Sleep(time.Second) // well into the register
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("still loading 5 s after SIGTERM\nstderr:\n%s", p.stderr.String())
	}
	if strings.Contains(p.stdout.String(), "listening on") {
		t.Fatalf("the gateway started listening:\n%s", p.stdout.String())
	}
	if !strings.Contains(p.stderr.String(), "interrupted") {
		t.Errorf("stderr does not say that loading was interrupted:\n%s", p.stderr.String())
	}
	if code := p.exitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM while starting, want 0 (a requested stop)", code)
	}
}

// TestDevWithAModuleOfItsOwn: `smithers dev --module` names the module's
// own workflow in its launch line, refuses a module path that does not
// exist, logs each line once, and logs which token store refused a token.
func TestDevWithAModuleOfItsOwn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, _, stderr := runToExit(t, dir, append(baseEnv(dir), "PORT=0"), "dev", "--module", filepath.Join(dir, "typo.mjs"))
	if code == 0 || !strings.Contains(stderr, "typo.mjs") {
		t.Fatalf("dev with a missing module: exit %d, stderr %q; want a non-zero exit naming the path", code, stderr)
	}

	mod := writeModule(t, `export default function register(gateway) {
  gateway.register("hello", async (ctx) => ({ hi: ctx.input.name ?? "you" }));
}`)
	g := startGatewayWith(t, gatewayConfig{command: "dev", module: mod})
	curl := g.waitStdout(func(l string) bool { return devCurlLine.MatchString(l) })
	m := devCurlLine.FindStringSubmatch(curl)
	if !strings.Contains(m[3], `"workflow":"hello"`) {
		t.Fatalf("launch line %q does not name the module's workflow hello", curl)
	}
	status, f := postRPC(t, g.URL, "not-a-token", "listRuns", map[string]any{})
	if status != http.StatusUnauthorized || strings.Contains(fmt.Sprint(f.Error), "tokens.json") {
		t.Fatalf("a bad token answered %d %+v; want 401 that tells the caller nothing of the server", status, f.Error)
	}
	eventually(t, 5*time.Second, "a log line naming the token store", func() bool {
		return strings.Contains(g.Stderr(), "refused a bearer token") && strings.Contains(g.Stderr(), filepath.Join(".smithers", "tokens.json"))
	})
	seen := map[string]bool{}
	for _, line := range strings.Split(g.Stderr(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			if strings.TrimSpace(line) != "" {
				t.Errorf("a log line that is not JSON (a second logger?): %q", line)
			}
			continue
		}
		key := fmt.Sprint(rec["msg"], rec["path"], rec["version"], rec["url"])
		if seen[key] {
			t.Errorf("log line logged twice: %s", line)
		}
		seen[key] = true
	}
}
