package e2e

// Helpers of the deploy tests (deploy_*_test.go): where the artefacts are,
// what the gateway reads, and running the binary as a packaging would.

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deployOnlyVars are the SMITHERS_* variables of deploy/ that the gateway
// does not read: Caddy's (deploy/reference/Caddyfile) and the compose file's
// own interpolation.
var deployOnlyVars = map[string]bool{
	"SMITHERS_DOMAIN":           true,
	"SMITHERS_TLS_EMAIL":        true,
	"SMITHERS_GATEWAY_UPSTREAM": true,
	"SMITHERS_CADDY_ADMIN":      true,
	"SMITHERS_CADDY_BIND":       true,
	"SMITHERS_WORKSPACE":        true,
}

// requiredDeployVars, the listen address and the paths, are set by every
// packaging (image ENV, compose, unit environment file, Deployment env):
// the paths name its volumes.
var requiredDeployVars = []string{"PORT", "HOST", "SMITHERS_DB_PATH", "SMITHERS_TOKEN_STORE", "SMITHERS_GATEWAY_MODULE"}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// deployFile is a path under deploy/; referenceFile one under
// deploy/reference/, the upstream page's layout.
func deployFile(parts ...string) string {
	return filepath.Join(append([]string{moduleRoot, "deploy"}, parts...)...)
}

func referenceFile(parts ...string) string {
	return deployFile(append([]string{"reference"}, parts...)...)
}

// replicatedFile is a path under deploy/replicated/, the deployment of
// several gateways on one PostgreSQL database.
func replicatedFile(parts ...string) string {
	return deployFile(append([]string{"replicated"}, parts...)...)
}

func readText(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// relPath is file relative to the repository root, for messages.
func relPath(file string) string {
	if rel, err := filepath.Rel(moduleRoot, file); err == nil {
		return filepath.ToSlash(rel)
	}
	return file
}

// ---- what the gateway reads -------------------------------------------------

// configVar is one row of cmd/smithers/config.go's option table.
type configVar struct {
	flag, def  string
	hasDefault bool // a literal default (not computed, not empty)
}

var optionRow = regexp.MustCompile(`\{env: "([A-Z0-9_]+)", flag: "([a-z0-9-]+)"(?:, def: ("[^"]*"))?`)

// gatewayEnvVars reads the environment variables the gateway reads from
// cmd/smithers/config.go's option table.
func gatewayEnvVars(t *testing.T) map[string]configVar {
	t.Helper()
	src := readText(t, filepath.Join(moduleRoot, "cmd", "smithers", "config.go"))
	vars := map[string]configVar{}
	for _, m := range optionRow.FindAllStringSubmatch(src, -1) {
		v := configVar{flag: m[2]}
		if m[3] != "" {
			v.def, _ = strconv.Unquote(m[3])
			v.hasDefault = v.def != ""
		}
		vars[m[1]] = v
	}
	for _, name := range requiredDeployVars {
		if _, ok := vars[name]; !ok {
			t.Fatalf("cmd/smithers/config.go's option table has no %s (or its layout changed: %d rows parsed)", name, len(vars))
		}
	}
	return vars
}

// checkGatewayVar fails unless name is a variable the gateway reads and,
// when defaults is set and the gateway has a literal default, value is it.
func checkGatewayVar(t *testing.T, known map[string]configVar, where, name, value string, defaults bool) {
	t.Helper()
	opt, ok := known[name]
	switch {
	case !ok:
		t.Errorf("%s: %s is not a variable the gateway reads (cmd/smithers/config.go)", where, name)
	case defaults && opt.hasDefault && value != opt.def:
		t.Errorf("%s: %s=%s, but the gateway's default is %q", where, name, value, opt.def)
	}
}

// readmeEnvVars reads the variable names of README.md's configuration
// table; "`_JWT_JWKS`" after a SMITHERS_GATEWAY_ name abbreviates
// SMITHERS_GATEWAY_JWT_JWKS.
func readmeEnvVars(t *testing.T) map[string]bool {
	t.Helper()
	_, section, ok := strings.Cut(readText(t, filepath.Join(moduleRoot, "README.md")), "\n## Configuration\n")
	if !ok {
		t.Fatalf("README.md has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	names := map[string]bool{}
	name := regexp.MustCompile("`(_?[A-Z][A-Z0-9_]*)`")
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "|") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			n := m[1]
			if strings.HasPrefix(n, "_") {
				n = "SMITHERS_GATEWAY" + n
			}
			names[n] = true
		}
	}
	if len(names) < len(requiredDeployVars) {
		t.Fatalf("README.md's configuration table: only %d names parsed", len(names))
	}
	return names
}

// caddyfileVars are the {$NAME} environment variables a Caddyfile reads.
func caddyfileVars(t *testing.T, caddyfile string) map[string]bool {
	t.Helper()
	vars := map[string]bool{}
	for _, m := range regexp.MustCompile(`\{\$([A-Z0-9_]+)`).FindAllStringSubmatch(readText(t, caddyfile), -1) {
		vars[m[1]] = true
	}
	return vars
}

func goModVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readText(t, filepath.Join(moduleRoot, "go.mod")))
	if m == nil {
		t.Fatalf("go.mod has no go directive")
	}
	return m[1]
}

// compareVersions compares dotted numeric versions ("1.26" < "1.26.8").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// parseEnvFile reads a systemd EnvironmentFile. Only plain KEY=VALUE lines
// are accepted (no quotes, escapes or $), so systemd reads every line
// exactly as this does.
func parseEnvFile(t *testing.T, file string) (map[string]string, []string) {
	t.Helper()
	env := map[string]string{}
	var order []string
	for i, line := range strings.Split(readText(t, file), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) || strings.ContainsAny(v, "\"'\\$ \t") {
			t.Fatalf("%s:%d: %q is not a plain KEY=VALUE line", relPath(file), i+1, line)
		}
		if _, dup := env[k]; dup {
			t.Errorf("%s:%d: %s is set twice", relPath(file), i+1, k)
		}
		env[k] = v
		order = append(order, k)
	}
	return env, order
}

// ---- files --------------------------------------------------------------------

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// makeReadOnlyDir makes dir read-only (a :ro mount) until the test ends.
func makeReadOnlyDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	// Runs before t.TempDir's removal (cleanups run last-registered first).
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
}

// pathRemap moves absolute container paths (a prefix and what is below it)
// into local directories.
type pathRemap map[string]string

func (m pathRemap) apply(v string) string {
	for from, to := range m {
		if v == from {
			return to
		}
		if rest, ok := strings.CutPrefix(v, from+"/"); ok {
			return filepath.Join(to, rest)
		}
	}
	return v
}

// ---- processes and HTTP ---------------------------------------------------------

// startBinaryGateway starts bin with args and exactly env (like spawn, for
// a binary other than binPath) and waits for its listening line. The
// returned Gateway has no data dir of its own: restart is not for it.
func startBinaryGateway(t *testing.T, bin, dir string, env []string, args ...string) *Gateway {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	p := &process{cmd: cmd, stdout: newLineBuffer(), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", bin, args, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()
	g := &Gateway{t: t, cfg: gatewayConfig{command: strings.Join(args, " ")}, DataDir: dir, proc: p, logs: []*lockedBuffer{p.stderr}}
	t.Cleanup(g.cleanup)
	line, ok := p.stdout.waitLine(startTimeout, p.done, listeningLine.MatchString)
	if !ok {
		p.kill()
		t.Fatalf("%s %v did not listen (exited: %v)\nstdout:\n%s\nstderr:\n%s", bin, args, p.exited(), p.stdout.String(), p.stderr.String())
	}
	g.URL = listeningLine.FindStringSubmatch(line)[1]
	return g
}

// checkHealth fails unless GET /health answers 200 {"ok":true,...}.
func checkHealth(t *testing.T, base string) {
	t.Helper()
	resp, body := doHTTP(t, http.MethodGet, base+"/health", "", nil, nil)
	var health struct {
		OK bool `json:"ok"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &health) != nil || !health.OK {
		t.Fatalf("GET %s/health = %d %s, want 200 {\"ok\":true,...}", base, resp.StatusCode, body)
	}
}

// doHTTP sends a request (a JSON body when body is not nil) and returns the
// response with its raw body read.
func doHTTP(t *testing.T, method, target, token string, body any, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, target, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return resp, raw
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
