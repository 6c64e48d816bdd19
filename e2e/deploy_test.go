package e2e

// Tests of deploy/: everything the deployment artefacts rely on that can run
// without Docker or a cluster. The artefacts are read as text (a Dockerfile
// parser and a YAML-subset parser below; both fail loudly on syntax they do
// not know, so the shipped files stay within it).

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dockerBuildCommand is deploy/Dockerfile's build command, word for word.
// TestStaticBuild runs it (staticBuildArgs) on the build context that
// deploy/Dockerfile.dockerignore leaves.
const dockerBuildCommand = `CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/smithers ./cmd/smithers`

// staticBuildArgs is dockerBuildCommand after the shell's unquoting, with
// the output path out.
func staticBuildArgs(out string) []string {
	return []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/smithers"}
}

// deployOnlyVars are the SMITHERS_* variables of deploy/ that the gateway does
// not read: Caddy's (deploy/Caddyfile) and compose's own interpolation.
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

// TestStaticBuild builds the binary as deploy/Dockerfile does, from the
// context its ignore file leaves, checks that it is statically linked, and
// runs it with exactly the environment the image gives it: the module in a
// read-only "mounted" directory, data in a "volume", the image's CMD.
func TestStaticBuild(t *testing.T) {
	t.Parallel()
	df := parseDockerfile(t)
	if !strings.Contains(df.text, dockerBuildCommand) {
		t.Fatalf("deploy/Dockerfile no longer contains the build command this test runs:\n  %s\nupdate dockerBuildCommand and staticBuildArgs together with the Dockerfile", dockerBuildCommand)
	}
	runtime := df.finalStage(t)

	ctxDir := filepath.Join(t.TempDir(), "src")
	copyBuildContext(t, ctxDir)
	bin := filepath.Join(t.TempDir(), "smithers")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", staticBuildArgs(bin)...)
	build.Dir = ctxDir
	// As in the golang image: no toolchain download, no cgo.
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build command failed in the filtered build context: %v\n%s", err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("open the binary as ELF: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (err %v), want none", libs, err)
	}
	f.Close()

	// The container: /data is a volume, /workspace a read-only mount of the
	// user's repository, HOME the nonroot user's.
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	wsDir := filepath.Join(root, "workspace")
	home := filepath.Join(root, "home")
	for _, d := range []string{dataDir, wsDir, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	imageEnv, order := runtime.env(t)
	moduleName := path.Base(imageEnv["SMITHERS_GATEWAY_MODULE"])
	copyFile(t, exampleModule("quickstart"), filepath.Join(wsDir, moduleName), 0o444)
	makeReadOnlyDir(t, wsDir)
	remap := pathRemap{"/data": dataDir, "/workspace": wsDir}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	for _, k := range order {
		v := remap.apply(imageEnv[k])
		switch k {
		case "HOST":
			v = "127.0.0.1" // the test's only change besides the paths
		case "PORT":
			v = "0"
		}
		env = append(env, k+"="+v)
	}

	// deploy/README.md: docker run --rm -v smithers-data:/data IMAGE token issue ... --store /data/tokens.json
	token := issueToken(t, remap.apply(imageEnv["SMITHERS_TOKEN_STORE"]))
	g := startBinaryGateway(t, bin, home, env, runtime.execForm(t, "CMD")...)
	g.Token = token

	resp, err := httpClient.Get(g.URL + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var health struct {
		OK bool `json:"ok"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &health) != nil || !health.OK {
		t.Fatalf("GET /health = %d %s, want 200 {\"ok\":true,...}", resp.StatusCode, body)
	}
	runID := g.launch("quickstart", map[string]any{"name": "container"})
	g.waitStatus(runID, "waiting-approval")
	g.approve(runID, "ship")
	g.waitStatus(runID, "finished")

	// docker stop: SIGTERM, then a clean exit.
	if code := g.terminate(); code != 0 {
		t.Errorf("the static gateway exited %d on SIGTERM, want 0", code)
	}
	entries, err := os.ReadDir(wsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != moduleName {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the gateway wrote into the read-only module directory: it holds %v", names)
	}
	if _, err := os.Stat(remap.apply(imageEnv["SMITHERS_DB_PATH"])); err != nil {
		t.Errorf("no database in the data volume: %v", err)
	}
}

// TestDockerfileMatchesConfig checks that every variable deploy/ sets is one
// the binary reads (cmd/smithers/config.go's option table, which the
// README's configuration table must list too), with the binary's defaults
// where the image sets them, and that the Dockerfile and compose file agree
// on paths, ports, user, entrypoint and build.
func TestDockerfileMatchesConfig(t *testing.T) {
	t.Parallel()
	known := gatewayEnvVars(t)
	readme := readmeEnvVars(t)
	for name := range known {
		if !readme[name] {
			t.Errorf("cmd/smithers/config.go reads %s but README.md's configuration table does not list it", name)
		}
	}
	for name := range readme {
		if _, ok := known[name]; !ok {
			t.Errorf("README.md's configuration table lists %s but cmd/smithers/config.go does not read it", name)
		}
	}

	df := parseDockerfile(t)
	// The build stage: the Go that go.mod asks for (the golang images set
	// GOTOOLCHAIN=local, so an older one fails the build).
	build := df.stage(t, "build")
	if !strings.HasPrefix(build.From, "golang:") {
		t.Errorf("build stage FROM %s, want a golang image", build.From)
	}
	goVersion := df.expand(strings.TrimPrefix(build.From, "golang:"))
	goVersion, _, _ = strings.Cut(goVersion, "-")
	if want := goModVersion(t); compareVersions(goVersion, want) < 0 {
		t.Errorf("build stage uses Go %s, but go.mod requires %s", goVersion, want)
	}
	if !slices.ContainsFunc(build.all("RUN"), func(s string) bool { return strings.Contains(s, dockerBuildCommand) }) {
		t.Errorf("build stage has no RUN with %s", dockerBuildCommand)
	}

	final := df.finalStage(t)
	if final.From != "gcr.io/distroless/static-debian12:nonroot" || final.Name != "runtime" {
		t.Errorf("final (default) stage is FROM %s AS %q, want gcr.io/distroless/static-debian12:nonroot AS runtime", final.From, final.Name)
	}
	if len(final.all("HEALTHCHECK")) > 0 {
		t.Errorf("the distroless stage has a HEALTHCHECK, which it cannot run (no shell, no client)")
	}
	shell := df.stage(t, "runtime-with-shell")
	if hc := shell.all("HEALTHCHECK"); len(hc) != 1 || !strings.Contains(hc[0], "/health") {
		t.Errorf("runtime-with-shell HEALTHCHECK = %q, want one probing /health", hc)
	}
	finalEnv, _ := final.env(t)
	for _, st := range []dockerStage{final, shell} {
		env, _ := st.env(t)
		for name, v := range env {
			opt, ok := known[name]
			if !ok {
				t.Errorf("stage %s: ENV %s is not a variable the gateway reads", st.Name, name)
				continue
			}
			if opt.hasDefault && v != opt.def {
				t.Errorf("stage %s: ENV %s=%s, but the gateway's default is %q", st.Name, name, v, opt.def)
			}
		}
		for _, name := range requiredDeployVars {
			if _, ok := env[name]; !ok {
				t.Errorf("stage %s sets no ENV %s", st.Name, name)
			}
		}
		dataDir := path.Dir(env["SMITHERS_DB_PATH"])
		if got := st.all("VOLUME"); !slices.Equal(got, []string{dataDir}) || path.Dir(env["SMITHERS_TOKEN_STORE"]) != dataDir {
			t.Errorf("stage %s: VOLUME %q, want exactly the directory of SMITHERS_DB_PATH and SMITHERS_TOKEN_STORE (%s)", st.Name, got, dataDir)
		}
		if got := st.all("EXPOSE"); !slices.Equal(got, []string{env["PORT"]}) {
			t.Errorf("stage %s: EXPOSE %q, want PORT %s", st.Name, got, env["PORT"])
		}
		if got := st.all("USER"); !slices.Equal(got, []string{"65532:65532"}) {
			t.Errorf("stage %s: USER %q, want 65532:65532 (numeric, for runAsNonRoot)", st.Name, got)
		}
		entry := st.execForm(t, "ENTRYPOINT")
		if !slices.Equal(entry, []string{"/smithers"}) || !slices.Equal(st.execForm(t, "CMD"), []string{"gateway"}) {
			t.Errorf("stage %s: ENTRYPOINT %q CMD %q, want [/smithers] [gateway]", st.Name, entry, st.execForm(t, "CMD"))
		}
		copies := st.all("COPY")
		if !slices.Contains(copies, "--from=build /out/smithers "+entry[0]) {
			t.Errorf("stage %s does not COPY the built binary to %s: %q", st.Name, entry[0], copies)
		}
		if !slices.Contains(copies, "--from=build --chown=65532:65532 /out/data "+dataDir) {
			t.Errorf("stage %s does not create %s owned by the runtime user: %q", st.Name, dataDir, copies)
		}
		if fmt.Sprint(env) != fmt.Sprint(finalEnv) {
			t.Errorf("stage %s ENV %v differs from the default stage's %v", st.Name, env, finalEnv)
		}
	}

	checkCompose(t, known, finalEnv, df)

	// Every SMITHERS_* name anywhere in deploy/ is the gateway's or a
	// documented deploy-only one: a renamed variable fails here.
	err := filepath.WalkDir(deployFile(), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(moduleRoot, p)
		for i, line := range strings.Split(string(b), "\n") {
			for _, name := range smithersName.FindAllString(line, -1) {
				if strings.HasSuffix(name, "_") {
					// A prefix, as in "the SMITHERS_GATEWAY_ tunables".
					if !hasPrefixOf(known, name) {
						t.Errorf("%s:%d: %s is the prefix of no gateway variable", rel, i+1, name)
					}
					continue
				}
				if _, ok := known[name]; !ok && !deployOnlyVars[name] {
					t.Errorf("%s:%d: %s is neither a gateway variable (cmd/smithers/config.go) nor a deploy-only one", rel, i+1, name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var smithersName = regexp.MustCompile(`SMITHERS_[A-Z0-9_]+`)

func hasPrefixOf(known map[string]configVar, prefix string) bool {
	for name := range known {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// checkCompose checks deploy/compose.yaml against the gateway's variables,
// the image's ENV and deploy/Caddyfile.
func checkCompose(t *testing.T, known map[string]configVar, imageEnv map[string]string, df *dockerfile) {
	t.Helper()
	docs := parseYAMLFile(t, deployFile("compose.yaml"))
	if len(docs) != 1 {
		t.Fatalf("compose.yaml has %d documents, want 1", len(docs))
	}
	compose := docs[0]
	gw := yget(t, compose, "services", "gateway")
	if ctx, file := ystr(t, gw, "build", "context"), ystr(t, gw, "build", "dockerfile"); filepath.Join(deployFile(), ctx, file) != deployFile("Dockerfile") {
		t.Errorf("compose builds %s with context %s, want deploy/Dockerfile with the repository root", file, ctx)
	}
	df.stage(t, ystr(t, gw, "build", "target"))
	if ystr(t, gw, "init") != "true" {
		t.Errorf("compose gateway: init is not true (nothing reaps t.exec orphans)")
	}
	env := ymap(t, gw, "environment")
	interp := regexp.MustCompile(`^\$\{([A-Z0-9_]+):-([^}]*)\}$`)
	for name, v := range env {
		value := v.(string)
		opt, ok := known[name]
		if !ok {
			t.Errorf("compose gateway environment: %s is not a variable the gateway reads", name)
			continue
		}
		if m := interp.FindStringSubmatch(value); m != nil {
			if m[1] != name || (opt.hasDefault && m[2] != opt.def) {
				t.Errorf("compose gateway environment: %s: %s, want ${%s:-%s}", name, value, name, opt.def)
			}
		} else if iv, ok := imageEnv[name]; ok && value != iv {
			t.Errorf("compose gateway environment: %s=%s, but the image sets %s", name, value, iv)
		}
	}
	for _, name := range requiredDeployVars {
		if _, ok := env[name]; !ok {
			t.Errorf("compose gateway environment does not set %s", name)
		}
	}
	volumes := ystrings(t, gw, "volumes")
	moduleDir := path.Dir(imageEnv["SMITHERS_GATEWAY_MODULE"])
	dataDir := path.Dir(imageEnv["SMITHERS_DB_PATH"])
	var haveModule, haveData bool
	topVolumes := ymap(t, compose, "volumes")
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		switch {
		case strings.HasSuffix(v, ":"+moduleDir+":ro"):
			haveModule = true
			// ${SMITHERS_WORKSPACE:-default}: the default must hold a module.
			src := strings.TrimSuffix(v, ":"+moduleDir+":ro")
			if m := interp.FindStringSubmatch(src); m != nil {
				src = m[2]
			}
			if _, err := os.Stat(filepath.Join(deployFile(), src, path.Base(imageEnv["SMITHERS_GATEWAY_MODULE"]))); err != nil {
				t.Errorf("compose mounts %s at %s, but it holds no module: %v", src, moduleDir, err)
			}
		case len(parts) == 2 && parts[1] == dataDir:
			haveData = true
			if _, ok := topVolumes[parts[0]]; !ok {
				t.Errorf("compose mounts volume %s, which is not declared", parts[0])
			}
		}
	}
	if !haveModule || !haveData {
		t.Errorf("compose gateway volumes %q: want the module directory read-only at %s and a named volume at %s", volumes, moduleDir, dataDir)
	}
	if expose := ystrings(t, gw, "expose"); !slices.Equal(expose, []string{imageEnv["PORT"]}) {
		t.Errorf("compose gateway expose %q, want [%s]", expose, imageEnv["PORT"])
	}
	if _, published := gw.(map[string]any)["ports"]; published {
		t.Errorf("compose publishes the gateway's port: only Caddy should be reachable")
	}

	caddy := yget(t, compose, "services", "caddy")
	if img := ystr(t, caddy, "image"); !strings.HasPrefix(img, "caddy:2") {
		t.Errorf("compose caddy image %s, want caddy:2", img)
	}
	caddyVars := caddyfileVars(t)
	for name, v := range ymap(t, caddy, "environment") {
		if !caddyVars[name] {
			t.Errorf("compose caddy environment: deploy/Caddyfile does not read %s", name)
		}
		if name == "SMITHERS_GATEWAY_UPSTREAM" && v != "gateway:"+imageEnv["PORT"] {
			t.Errorf("compose caddy SMITHERS_GATEWAY_UPSTREAM=%v, want gateway:%s", v, imageEnv["PORT"])
		}
	}
	if !slices.Contains(ystrings(t, caddy, "volumes"), "./Caddyfile:/etc/caddy/Caddyfile:ro") {
		t.Errorf("compose caddy does not mount ./Caddyfile read-only at /etc/caddy/Caddyfile")
	}
	ports := ystrings(t, caddy, "ports")
	if !slices.Contains(ports, "80:80") || !slices.Contains(ports, "443:443") {
		t.Errorf("compose caddy ports %q, want 80:80 and 443:443", ports)
	}
	probe := strings.Join(ystrings(t, caddy, "healthcheck", "test"), " ")
	if !strings.Contains(probe, "http://gateway:"+imageEnv["PORT"]+"/health") {
		t.Errorf("compose caddy healthcheck %q does not probe the gateway's /health", probe)
	}
	for _, name := range regexp.MustCompile(`\$\{([A-Z0-9_]+)`).FindAllStringSubmatch(readDeployFile(t, "compose.yaml"), -1) {
		if _, ok := known[name[1]]; !ok && !deployOnlyVars[name[1]] {
			t.Errorf("compose.yaml interpolates ${%s}, which nothing documents", name[1])
		}
	}
}

// bigOutputModule's workflow returns a large output, so that getRun's
// response is large enough for Caddy to compress.
const bigOutputModule = `
export default function register(gateway) {
  gateway.register("big", async (ctx) => {
    return await ctx.task("make", async () => ({ blob: "x".repeat(ctx.input.size) }));
  });
}
`

// TestCaddyReverseProxy runs deploy/Caddyfile in Caddy in front of the
// gateway, on a loopback port with plain HTTP, and checks what the
// reference deployment promises through it. Between Caddy and the gateway a
// transparent Go proxy records the headers Caddy sends upstream.
func TestCaddyReverseProxy(t *testing.T) {
	t.Parallel()
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatalf("caddy is not on PATH (%v): install it (apt-get install -y caddy; CI installs it) — this test runs deploy/Caddyfile in front of the gateway", err)
	}
	caddyfile := deployFile("Caddyfile")

	// The shipped defaults: a public site on all interfaces with an ACME
	// email, Caddy's usual admin endpoint, and no adapter warnings.
	prod, stderr := caddyAdapt(t, caddy, caddyfile, caddyEnv(t, map[string]string{
		"SMITHERS_DOMAIN": "smithers.example.com", "SMITHERS_TLS_EMAIL": "ops@example.com", "SMITHERS_GATEWAY_UPSTREAM": "gateway:7331"}))
	if strings.Contains(stderr, "warn") || strings.Contains(stderr, "WARN") {
		t.Errorf("caddy adapt warns about deploy/Caddyfile:\n%s", stderr)
	}
	if prod.Admin.Listen != "localhost:2019" || prod.Admin.Disabled {
		t.Errorf("default admin endpoint %+v, want localhost:2019", prod.Admin)
	}
	if l := prod.listens(); !slices.Equal(l, []string{":443"}) {
		t.Errorf("default listeners %q, want [:443] (all interfaces)", l)
	}
	if e := prod.issuerEmails(); len(e) == 0 || slices.ContainsFunc(e, func(s string) bool { return s != "ops@example.com" }) {
		t.Errorf("ACME issuer emails %q, want ops@example.com", e)
	}
	if !strings.Contains(prod.raw, `"dial":"gateway:7331"`) {
		t.Errorf("the adapted config does not proxy to SMITHERS_GATEWAY_UPSTREAM: %s", prod.raw)
	}
	if unset, _ := caddyAdapt(t, caddy, caddyfile, caddyEnv(t, nil)); !strings.Contains(unset.raw, `"dial":"127.0.0.1:7331"`) || !strings.Contains(unset.raw, `"localhost"`) {
		t.Errorf("without environment the site is not localhost proxying to 127.0.0.1:7331: %s", unset.raw)
	}

	g := startGateway(t, writeModule(t, bigOutputModule))
	tap := newHeaderTap(t, g.URL)
	site := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base := "http://" + site
	env := caddyEnv(t, map[string]string{"SMITHERS_DOMAIN": base, "SMITHERS_GATEWAY_UPSTREAM": tap.addr,
		"SMITHERS_CADDY_ADMIN": "off", "SMITHERS_CADDY_BIND": "127.0.0.1"})
	if cfg, _ := caddyAdapt(t, caddy, caddyfile, env); !slices.Equal(cfg.listens(), []string{site}) || !cfg.Admin.Disabled {
		t.Fatalf("test configuration listens on %q with admin %+v, want only %s and no admin endpoint", cfg.listens(), cfg.Admin, site)
	}
	startCaddy(t, caddy, caddyfile, env, base)

	// GET /health, with forged forwarding headers that Caddy must replace.
	resp, body := doHTTP(t, http.MethodGet, base+"/health", "", nil, map[string]string{
		"X-Test-Call": "health", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
	var health struct {
		OK bool `json:"ok"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &health) != nil || !health.OK {
		t.Fatalf("GET /health through Caddy = %d %s", resp.StatusCode, body)
	}
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Smithers-API-Version": "v1"} {
		if got := resp.Header.Values(name); !slices.Equal(got, []string{want}) {
			t.Errorf("/health through Caddy: %s = %q, want exactly [%s]", name, got, want)
		}
	}
	up := tap.request(t, "health")
	for name, want := range map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Host": site, "X-Forwarded-For": "127.0.0.1"} {
		if got := up.Values(name); !slices.Equal(got, []string{want}) {
			t.Errorf("upstream request: %s = %q, want [%s]", name, got, want)
		}
	}
	if rid := up.Get("X-Request-Id"); !uuidPattern.MatchString(rid) {
		t.Errorf("upstream request: X-Request-Id = %q, want a UUID", rid)
	}

	// An RPC without a body id answers with Caddy's request id, not the
	// client's.
	resp, body = doHTTP(t, http.MethodPost, base+"/v1/rpc/launchRun", g.Token,
		map[string]any{"workflow": "big", "input": map[string]any{"size": 8192}},
		map[string]string{"X-Test-Call": "launch", "X-Request-Id": "client-chosen-id"})
	var f frame
	if err := json.Unmarshal(body, &f); err != nil || resp.StatusCode != http.StatusOK || !f.OK {
		t.Fatalf("launchRun through Caddy = %d %s", resp.StatusCode, body)
	}
	rid := tap.request(t, "launch").Get("X-Request-Id")
	if !uuidPattern.MatchString(rid) || f.ID != rid {
		t.Errorf("launchRun response id = %q, want the X-Request-Id UUID Caddy sent upstream (%q)", f.ID, rid)
	}
	var launched struct {
		RunID string `json:"runId"`
	}
	decode(t, f.Payload, &launched)
	g.waitStatus(launched.RunID, "finished")

	// A large JSON response is compressed.
	resp, body = doHTTP(t, http.MethodPost, base+"/v1/rpc/getRun", g.Token, map[string]any{"runId": launched.RunID},
		map[string]string{"Accept-Encoding": "gzip"})
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Errorf("getRun through Caddy with Accept-Encoding: gzip: Content-Encoding %q, want gzip (%d bytes)", ce, len(body))
	} else {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip body: %v", err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gunzip body: %v", err)
		}
		var run struct {
			OK      bool `json:"ok"`
			Payload struct {
				Output struct {
					Blob string `json:"blob"`
				} `json:"output"`
			} `json:"payload"`
		}
		if json.Unmarshal(plain, &run) != nil || !run.OK || len(run.Payload.Output.Blob) != 8192 {
			t.Errorf("getRun through Caddy, gunzipped: %.300s", plain)
		}
	}

	t.Run("websocket", func(t *testing.T) {
		dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		conn, resp, err := dialer.Dial("ws://"+site+"/", http.Header{"X-Test-Call": {"websocket"}})
		if err != nil {
			how := ""
			if resp != nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				how = fmt.Sprintf(" (HTTP %s: %s)", resp.Status, b)
			}
			t.Fatalf("WebSocket upgrade through Caddy: %v%s", err, how)
		}
		defer conn.Close()
		if v := resp.Header.Get("X-Smithers-API-Version"); v != "v1" {
			t.Errorf("101 through Caddy: X-Smithers-API-Version = %q, want v1", v)
		}
		if up := tap.request(t, "websocket"); !strings.EqualFold(up.Get("Upgrade"), "websocket") || !uuidPattern.MatchString(up.Get("X-Request-Id")) {
			t.Errorf("upstream upgrade request: Upgrade %q, X-Request-Id %q", up.Get("Upgrade"), up.Get("X-Request-Id"))
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var challenge struct {
			Type    string `json:"type"`
			Event   string `json:"event"`
			Seq     int64  `json:"seq"`
			Payload struct {
				Nonce string `json:"nonce"`
			} `json:"payload"`
		}
		if err := conn.ReadJSON(&challenge); err != nil {
			t.Fatalf("read the first frame through Caddy: %v", err)
		}
		if challenge.Type != "event" || challenge.Event != "connect.challenge" || challenge.Seq != 1 || challenge.Payload.Nonce == "" {
			t.Fatalf("first frame through Caddy = %+v, want the connect.challenge event with seq 1 and a nonce", challenge)
		}
		// Client frames pass the other way too.
		connect := map[string]any{"type": "req", "id": "c1", "method": "connect", "params": map[string]any{
			"minProtocol": 1, "maxProtocol": 1, "client": map[string]any{"id": "e2e", "version": "0", "platform": "go"},
			"auth": map[string]any{"token": g.Token}}}
		if err := conn.WriteJSON(connect); err != nil {
			t.Fatalf("send connect: %v", err)
		}
		for {
			var res frame
			if err := conn.ReadJSON(&res); err != nil {
				t.Fatalf("read the connect response through Caddy: %v", err)
			}
			if res.Type == "res" && res.ID == "c1" {
				if !res.OK {
					t.Fatalf("connect through Caddy failed: %+v", res.Error)
				}
				break
			}
		}
	})
}

// TestDeploySystemdUnits verifies the units with systemd-analyze (syntax,
// executables, and the hardening's exposure score), checks the directives
// the deployment relies on, and starts the gateway with the environment
// file example, paths moved into a temporary directory.
func TestDeploySystemdUnits(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not on PATH (%v): install it (apt-get install -y systemd; CI installs it) — this test verifies deploy/systemd", err)
	}
	units := []string{"smithers-gateway.service", "smithers-caddy.service"}

	// An alternative root with the system's unit files, the units under
	// test and stand-ins for the executables they start.
	root := t.TempDir()
	sysUnits := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(sysUnits, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				copyFile(t, filepath.Join(dir, e.Name()), filepath.Join(sysUnits, e.Name()), 0o644)
			}
		}
		break
	}
	gwUnit := parseUnitFile(t, "smithers-gateway.service")
	caddyUnit := parseUnitFile(t, "smithers-caddy.service")
	for _, u := range []unitFile{gwUnit, caddyUnit} {
		exe := strings.Fields(u.one(t, "Service", "ExecStart"))[0]
		stub := filepath.Join(root, exe)
		if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range units {
		copyFile(t, deployFile("systemd", u), filepath.Join(root, "etc/systemd/system", u), 0o644)
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--root=" + root}, units...)...).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "smithers-") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	// 4.9 is the top of systemd's "OK" exposure band.
	out, err = exec.Command(analyze, "security", "--offline=true", "--root="+root, "--threshold=49", "smithers-gateway.service").CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Errorf("systemd-analyze security: smithers-gateway.service is above exposure 4.9: %v\n%s", err, lines[len(lines)-1])
	}

	envFile := gwUnit.one(t, "Service", "EnvironmentFile")
	for name, want := range map[string]string{"User": "smithers", "Restart": "on-failure", "KillMode": "control-group",
		"NoNewPrivileges": "true", "PrivateTmp": "true", "ProtectHome": "true"} {
		if got := gwUnit.one(t, "Service", name); got != want {
			t.Errorf("smithers-gateway.service: %s=%s, want %s", name, got, want)
		}
	}
	if ps := gwUnit.one(t, "Service", "ProtectSystem"); ps != "strict" && ps != "full" {
		t.Errorf("smithers-gateway.service: ProtectSystem=%s, want strict or full", ps)
	}
	if gwUnit.one(t, "Service", "TimeoutStopSec") == "" {
		t.Errorf("smithers-gateway.service has no TimeoutStopSec")
	}
	exec0 := strings.Fields(gwUnit.one(t, "Service", "ExecStart"))
	if !slices.Equal(exec0, []string{"/usr/local/bin/smithers", "gateway"}) {
		t.Errorf("smithers-gateway.service ExecStart=%q, want /usr/local/bin/smithers gateway", exec0)
	}
	if got := caddyUnit.one(t, "Service", "EnvironmentFile"); got != envFile {
		t.Errorf("smithers-caddy.service EnvironmentFile=%s, want the gateway's %s", got, envFile)
	}
	caddyExec := caddyUnit.one(t, "Service", "ExecStart")
	if !strings.Contains(caddyExec, " run ") || !strings.Contains(caddyExec, "--adapter caddyfile") {
		t.Errorf("smithers-caddy.service ExecStart=%s, want caddy run with the caddyfile adapter", caddyExec)
	}

	// The environment file example, with /var/lib/smithers and
	// /etc/smithers moved into a temporary directory.
	known := gatewayEnvVars(t)
	caddyVars := caddyfileVars(t)
	example, order := parseEnvFile(t, deployFile("systemd", "gateway.env.example"))
	for _, name := range order {
		opt, isGateway := known[name]
		if !isGateway && !caddyVars[name] {
			t.Errorf("gateway.env.example sets %s, which neither the gateway nor the Caddyfile reads", name)
		}
		if isGateway && opt.hasDefault && strings.HasPrefix(name, "SMITHERS_GATEWAY_") && name != "SMITHERS_GATEWAY_MODULE" && example[name] != opt.def {
			t.Errorf("gateway.env.example: %s=%s, but the file says its tunables show the defaults (%s)", name, example[name], opt.def)
		}
	}
	if h := example["HOST"]; h != "127.0.0.1" {
		t.Errorf("gateway.env.example HOST=%s, want 127.0.0.1 (Caddy on the host is the way in)", h)
	}
	stateDir := path.Dir(example["SMITHERS_DB_PATH"])
	if rw := strings.Fields(gwUnit.one(t, "Service", "ReadWritePaths")); !slices.Contains(rw, stateDir) {
		t.Errorf("smithers-gateway.service ReadWritePaths=%q does not contain the database directory %s", rw, stateDir)
	}
	if wd := gwUnit.one(t, "Service", "WorkingDirectory"); wd != stateDir {
		t.Errorf("smithers-gateway.service WorkingDirectory=%s, want %s", wd, stateDir)
	}
	etcDir := path.Dir(envFile)
	for _, name := range []string{"SMITHERS_TOKEN_STORE", "SMITHERS_GATEWAY_MODULE"} {
		if path.Dir(example[name]) != etcDir {
			t.Errorf("gateway.env.example %s=%s, want it in %s", name, example[name], etcDir)
		}
	}
	if up := example["SMITHERS_GATEWAY_UPSTREAM"]; up != net.JoinHostPort(example["HOST"], example["PORT"]) {
		t.Errorf("gateway.env.example SMITHERS_GATEWAY_UPSTREAM=%s, want the gateway's HOST:PORT", up)
	}

	tmp := t.TempDir()
	remap := pathRemap{stateDir: filepath.Join(tmp, "state"), etcDir: filepath.Join(tmp, "etc")}
	for _, d := range remap {
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, exampleModule("quickstart"), remap.apply(example["SMITHERS_GATEWAY_MODULE"]), 0o640)
	env := baseEnv(remap.apply(stateDir))
	for _, name := range order {
		v := remap.apply(example[name])
		if name == "PORT" {
			v = "0"
		}
		env = append(env, name+"="+v)
	}
	token := issueToken(t, remap.apply(example["SMITHERS_TOKEN_STORE"]))
	g := startBinaryGateway(t, binPath, remap.apply(stateDir), env, exec0[1:]...)
	g.Token = token
	if !strings.HasPrefix(g.URL, "http://127.0.0.1:") {
		t.Errorf("the gateway listens on %s, want 127.0.0.1", g.URL)
	}
	runID := g.launch("quickstart", map[string]any{"name": "systemd"})
	g.waitStatus(runID, "waiting-approval")
	if _, err := os.Stat(remap.apply(example["SMITHERS_DB_PATH"])); err != nil {
		t.Errorf("no database at SMITHERS_DB_PATH: %v", err)
	}
}

// TestDeployKubernetes checks the manifests' cross references, then runs
// the gateway as the Deployment's pod would: its env and envFrom, the
// module from the module ConfigMap, and the token store in a directory laid
// out as the kubelet projects a Secret; a rotation of that Secret (a symlink
// swap) takes effect without a restart.
func TestDeployKubernetes(t *testing.T) {
	t.Parallel()
	known := gatewayEnvVars(t)
	objects := map[string]any{} // "Kind/name"
	var files []string
	entries, err := os.ReadDir(deployFile("k8s"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") || e.Name() == "kustomization.yaml" {
			continue
		}
		files = append(files, e.Name())
		for _, doc := range parseYAMLFile(t, deployFile("k8s", e.Name())) {
			kind, name := ystr(t, doc, "kind"), ystr(t, doc, "metadata", "name")
			objects[kind+"/"+name] = doc
			if kind != "Namespace" && ystr(t, doc, "metadata", "namespace") != "smithers" {
				t.Errorf("%s %s is not in namespace smithers", kind, name)
			}
		}
	}
	kust := parseYAMLFile(t, deployFile("k8s", "kustomization.yaml"))[0]
	if res := ystrings(t, kust, "resources"); !slices.Equal(sorted(res), sorted(files)) {
		t.Errorf("kustomization resources %q, want every manifest %q", res, files)
	}
	obj := func(key string) any {
		t.Helper()
		o, ok := objects[key]
		if !ok {
			t.Fatalf("deploy/k8s has no %s", key)
		}
		return o
	}
	obj("Namespace/smithers")
	dep := obj("Deployment/smithers-gateway")
	if r := ystr(t, dep, "spec", "replicas"); r != "1" {
		t.Errorf("Deployment replicas %s, want 1 (SQLite has one writer)", r)
	}
	if s := ystr(t, dep, "spec", "strategy", "type"); s != "Recreate" {
		t.Errorf("Deployment strategy %s, want Recreate (never two pods on the database)", s)
	}
	pod := yget(t, dep, "spec", "template", "spec")
	podLabels := ymap(t, dep, "spec", "template", "metadata", "labels")
	if u := ystr(t, pod, "securityContext", "runAsUser"); u != "65532" {
		t.Errorf("pod runAsUser %s, want the image's 65532", u)
	}
	containers := ylist(t, pod, "containers")
	if len(containers) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(containers))
	}
	c := containers[0]
	env := map[string]string{}
	var envOrder []string
	for _, from := range ylist(t, c, "envFrom") {
		cm := obj("ConfigMap/" + ystr(t, from, "configMapRef", "name"))
		for name, v := range ymap(t, cm, "data") {
			if !strings.HasPrefix(name, "SMITHERS_GATEWAY_") {
				t.Errorf("ConfigMap %s sets %s: it holds the SMITHERS_GATEWAY_ tunables", ystr(t, cm, "metadata", "name"), name)
			}
			opt, ok := known[name]
			if !ok {
				t.Errorf("ConfigMap data %s is not a variable the gateway reads", name)
			} else if opt.hasDefault && v.(string) != opt.def {
				t.Errorf("ConfigMap data %s=%s, want the gateway's default %s", name, v, opt.def)
			}
			env[name] = v.(string)
			envOrder = append(envOrder, name)
		}
	}
	for _, e := range ylist(t, c, "env") {
		name := ystr(t, e, "name")
		if _, ok := known[name]; !ok {
			t.Errorf("Deployment env %s is not a variable the gateway reads", name)
		}
		if _, ok := env[name]; !ok {
			envOrder = append(envOrder, name)
		}
		env[name] = ystr(t, e, "value")
	}
	for _, name := range requiredDeployVars {
		if _, ok := env[name]; !ok {
			t.Errorf("Deployment env does not set %s", name)
		}
	}
	port := ylist(t, c, "ports")[0]
	if ystr(t, port, "name") != "http" || ystr(t, port, "containerPort") != env["PORT"] {
		t.Errorf("container port %v, want http = PORT %s", port, env["PORT"])
	}
	if ystr(t, c, "readinessProbe", "httpGet", "path") != "/health" || ystr(t, c, "readinessProbe", "httpGet", "port") != "http" {
		t.Errorf("readinessProbe %v, want GET /health on http", yget(t, c, "readinessProbe"))
	}
	// Each path variable lives in the volume mounted at its directory.
	volumes := map[string]any{}
	for _, v := range ylist(t, pod, "volumes") {
		volumes[ystr(t, v, "name")] = v
	}
	mounts := map[string]any{} // mountPath -> volume
	readOnly := map[string]bool{}
	for _, m := range ylist(t, c, "volumeMounts") {
		if _, ok := m.(map[string]any)["subPath"]; ok {
			t.Errorf("volumeMount %v uses subPath, which never sees updates", m)
		}
		v, ok := volumes[ystr(t, m, "name")]
		if !ok {
			t.Errorf("volumeMount %v names no volume", m)
			continue
		}
		mounts[ystr(t, m, "mountPath")] = v
		readOnly[ystr(t, m, "mountPath")] = m.(map[string]any)["readOnly"] == "true"
	}
	volumeAt := func(envName string) (vol any, dir string) {
		t.Helper()
		dir = path.Dir(env[envName])
		vol, ok := mounts[dir]
		if !ok {
			t.Fatalf("%s=%s: nothing is mounted at %s", envName, env[envName], dir)
		}
		return vol, dir
	}
	dataVol, dataDir := volumeAt("SMITHERS_DB_PATH")
	obj("PersistentVolumeClaim/" + ystr(t, dataVol, "persistentVolumeClaim", "claimName"))
	if ystr(t, dataVol, "persistentVolumeClaim", "claimName") != "smithers-sqlite" {
		t.Errorf("the database volume is %v, want the PVC smithers-sqlite", dataVol)
	}
	tokVol, tokDir := volumeAt("SMITHERS_TOKEN_STORE")
	if ystr(t, tokVol, "secret", "secretName") != "smithers-gateway-tokens" || !readOnly[tokDir] || tokDir != "/var/run/smithers" {
		t.Errorf("the token store's volume %v at %s (read-only %v), want the Secret smithers-gateway-tokens read-only at /var/run/smithers", tokVol, tokDir, readOnly[tokDir])
	}
	modVol, modDir := volumeAt("SMITHERS_GATEWAY_MODULE")
	moduleCM := obj("ConfigMap/" + ystr(t, modVol, "configMap", "name"))
	moduleName := path.Base(env["SMITHERS_GATEWAY_MODULE"])
	moduleSrc := ystr(t, moduleCM, "data", moduleName)
	if !readOnly[modDir] {
		t.Errorf("the module volume at %s is not read-only", modDir)
	}
	svc := obj("Service/smithers-gateway")
	if !mapsEqual(ymap(t, svc, "spec", "selector"), podLabels) {
		t.Errorf("Service selector %v does not select the pod labels %v", yget(t, svc, "spec", "selector"), podLabels)
	}
	sp := ylist(t, svc, "spec", "ports")[0]
	if ystr(t, sp, "port") != "80" || ystr(t, sp, "targetPort") != "http" {
		t.Errorf("Service port %v, want 80 -> http", sp)
	}
	ing := obj("Ingress/smithers-gateway")
	backend := yget(t, ylist(t, ylist(t, ing, "spec", "rules")[0], "http", "paths")[0], "backend", "service")
	if ystr(t, backend, "name") != "smithers-gateway" || ystr(t, backend, "port", "name") != "http" {
		t.Errorf("Ingress backend %v, want service smithers-gateway port http", backend)
	}
	ann := ymap(t, ing, "metadata", "annotations")
	for _, a := range []string{"cert-manager.io/cluster-issuer", "nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
		if _, ok := ann[a]; !ok {
			t.Errorf("Ingress has no annotation %s", a)
		}
	}

	// The pod, run here.
	tmp := t.TempDir()
	local := pathRemap{dataDir: filepath.Join(tmp, "data"), tokDir: filepath.Join(tmp, "secret"), modDir: filepath.Join(tmp, "workspace")}
	for _, d := range local {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(local[modDir], moduleName), []byte(moduleSrc), 0o444); err != nil {
		t.Fatal(err)
	}
	makeReadOnlyDir(t, local[modDir])
	scratch := filepath.Join(t.TempDir(), "tokens.json")
	tokA := issueToken(t, scratch)
	tokenKey := path.Base(env["SMITHERS_TOKEN_STORE"])
	projectSecret(t, local[tokDir], tokenKey, scratch, 1)

	procEnv := baseEnv(tmp)
	for _, name := range envOrder {
		v := local.apply(env[name])
		switch name {
		case "HOST":
			v = "127.0.0.1"
		case "PORT":
			v = "0"
		}
		procEnv = append(procEnv, name+"="+v)
	}
	g := startBinaryGateway(t, binPath, tmp, procEnv, ystrings(t, c, "args")...)
	g.Token = tokA
	var workflows []struct {
		Key string `json:"key"`
	}
	decode(t, g.rpc("listWorkflows", map[string]any{}), &workflows)
	if len(workflows) == 0 {
		t.Fatalf("the module of %s registers no workflow", ystr(t, moduleCM, "metadata", "name"))
	}
	runID := g.launch(workflows[0].Key, map[string]any{"name": "k8s"})
	if r := g.getRun(runID); isTerminal(r.Status) && r.Status != "finished" {
		t.Errorf("the module's workflow %s ended %s: %s", workflows[0].Key, r.Status, deref(r.ErrorJSON))
	}

	// Rotate the Secret: token A revoked, token B issued; the kubelet swaps
	// the ..data symlink to a new directory.
	revokeToken(t, scratch, tokA)
	tokB := issueToken(t, scratch)
	projectSecret(t, local[tokDir], tokenKey, scratch, 2)
	eventually(t, 10*time.Second, "the rotated Secret to take effect", func() bool {
		sa, _ := postRPC(t, g.URL, tokA, "listWorkflows", map[string]any{})
		sb, _ := postRPC(t, g.URL, tokB, "listWorkflows", map[string]any{})
		return sa == http.StatusUnauthorized && sb == http.StatusOK
	})
}

// ---- processes -------------------------------------------------------------

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
		t.Fatalf("%s %v did not listen (exited: %v)\nstdout:\n%s", bin, args, p.exited(), p.stdout.String())
	}
	g.URL = listeningLine.FindStringSubmatch(line)[1]
	return g
}

// caddyEnv is Caddy's environment: its own HOME and XDG directories and vars.
func caddyEnv(t *testing.T, vars map[string]string) []string {
	t.Helper()
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// caddyConfig is the part of Caddy's JSON config the tests look at.
type caddyConfig struct {
	raw   string
	Admin struct {
		Disabled bool   `json:"disabled"`
		Listen   string `json:"listen"`
	} `json:"admin"`
	Apps struct {
		HTTP struct {
			Servers map[string]struct {
				Listen []string `json:"listen"`
			} `json:"servers"`
		} `json:"http"`
		TLS struct {
			Automation struct {
				Policies []struct {
					Issuers []struct {
						Email string `json:"email"`
					} `json:"issuers"`
				} `json:"policies"`
			} `json:"automation"`
		} `json:"tls"`
	} `json:"apps"`
}

func (c caddyConfig) listens() []string {
	var l []string
	for _, s := range c.Apps.HTTP.Servers {
		l = append(l, s.Listen...)
	}
	sort.Strings(l)
	return l
}

func (c caddyConfig) issuerEmails() []string {
	var e []string
	for _, p := range c.Apps.TLS.Automation.Policies {
		for _, i := range p.Issuers {
			e = append(e, i.Email)
		}
	}
	return e
}

// caddyAdapt adapts the Caddyfile with env and returns the JSON config and
// Caddy's log output.
func caddyAdapt(t *testing.T, caddy, caddyfile string, env []string) (caddyConfig, string) {
	t.Helper()
	cmd := exec.Command(caddy, "adapt", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("caddy adapt %s: %v\n%s", caddyfile, err, stderr.String())
	}
	var cfg caddyConfig
	if err := json.Unmarshal(stdout.Bytes(), &cfg); err != nil {
		t.Fatalf("caddy adapt printed no JSON config: %v\n%s", err, stdout.String())
	}
	cfg.raw = stdout.String()
	return cfg, stderr.String()
}

// startCaddy runs `caddy run` with the Caddyfile, waits until base answers,
// and kills Caddy at cleanup (printing its log if the test failed).
func startCaddy(t *testing.T, caddy, caddyfile string, env []string, base string) {
	t.Helper()
	cmd := exec.Command(caddy, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = env
	cmd.Dir = t.TempDir()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(exitTimeout):
			t.Errorf("caddy did not exit after SIGKILL")
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := httpClient.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("caddy exited before serving %s:\n%s", base, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not serve %s within %v: %v\n%s", base, startTimeout, err, out.String())
		}
	}
}

// headerTap is a reverse proxy that records the request headers of every
// request carrying X-Test-Call. It buffers each HTTP response and writes it
// whole, with its length (the gateway never streams an HTTP response), so
// that the tap adds no streaming behaviour of its own to what Caddy sees;
// WebSocket upgrades go through httputil.ReverseProxy.
type headerTap struct {
	addr string
	mu   sync.Mutex
	seen map[string]http.Header
}

func newHeaderTap(t *testing.T, upstream string) *headerTap {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	tap := &headerTap{seen: map[string]http.Header{}}
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	ws := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if call := r.Header.Get("X-Test-Call"); call != "" {
			tap.mu.Lock()
			tap.seen[call] = r.Header.Clone()
			tap.mu.Unlock()
		}
		if websocket.IsWebSocketUpgrade(r) {
			ws.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		out.Header.Del("Connection")
		resp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for k, vs := range resp.Header {
			if k != "Connection" && k != "Transfer-Encoding" && k != "Content-Length" {
				w.Header()[k] = vs
			}
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	tap.addr = srv.Listener.Addr().String()
	return tap
}

func (tap *headerTap) request(t *testing.T, call string) http.Header {
	t.Helper()
	tap.mu.Lock()
	defer tap.mu.Unlock()
	h, ok := tap.seen[call]
	if !ok {
		t.Fatalf("the %s request did not reach the upstream", call)
	}
	return h
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

// ---- files -----------------------------------------------------------------

func deployFile(parts ...string) string {
	return filepath.Join(append([]string{moduleRoot, "deploy"}, parts...)...)
}

func readDeployFile(t *testing.T, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(deployFile(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

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

// projectSecret lays out dir as the kubelet does for a Secret volume, with
// the file src as key: a timestamped directory, the ..data symlink to it,
// swapped atomically by rename, and key -> ..data/key.
func projectSecret(t *testing.T, dir, key, src string, generation int) {
	t.Helper()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Chmod(dir, 0o555) }()
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", generation, generation)
	copyFile(t, src, filepath.Join(dir, ts, key), 0o440)
	tmpLink := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(ts, tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old == "" {
		if err := os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)); err != nil {
			t.Fatal(err)
		}
	} else if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
		t.Fatal(err)
	}
}

// copyBuildContext copies the repository into dst as `docker build .`
// would send it, leaving out what deploy/Dockerfile.dockerignore excludes.
// Only the pattern forms the file uses are supported: names and globs
// relative to the root, optionally prefixed by **/; no exceptions (!).
func copyBuildContext(t *testing.T, dst string) {
	t.Helper()
	type rule struct {
		pattern  string
		anyDepth bool
	}
	var rules []rule
	for _, line := range strings.Split(readDeployFile(t, "Dockerfile.dockerignore"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := rule{pattern: strings.TrimPrefix(path.Clean(line), "/")}
		if rest, ok := strings.CutPrefix(r.pattern, "**/"); ok {
			r = rule{pattern: rest, anyDepth: true}
		}
		if strings.HasPrefix(line, "!") || strings.Contains(r.pattern, "**") {
			t.Fatalf("Dockerfile.dockerignore: %q is a pattern form this test does not implement", line)
		}
		rules = append(rules, r)
	}
	excluded := func(rel string) bool {
		segs := strings.Split(rel, "/")
		for _, r := range rules {
			n := strings.Count(r.pattern, "/") + 1
			for i := 0; i+n <= len(segs); i++ {
				if ok, _ := path.Match(r.pattern, strings.Join(segs[i:i+n], "/")); ok {
					return true
				}
				if !r.anyDepth {
					break
				}
			}
		}
		return false
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(moduleRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(moduleRoot, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if excluded(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copy the build context: %v", err)
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd/smithers"} {
		if _, err := os.Stat(filepath.Join(dst, need)); err != nil {
			t.Fatalf("Dockerfile.dockerignore excludes %s, which the build needs", need)
		}
	}
}

// ---- configuration sources ---------------------------------------------------

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
	b, err := os.ReadFile(filepath.Join(moduleRoot, "cmd", "smithers", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]configVar{}
	for _, m := range optionRow.FindAllStringSubmatch(string(b), -1) {
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

// readmeEnvVars reads the variable names of README.md's configuration
// table; "`_JWT_JWKS`" after a SMITHERS_GATEWAY_ name abbreviates
// SMITHERS_GATEWAY_JWT_JWKS.
func readmeEnvVars(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
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

// caddyfileVars are the {$NAME} environment variables deploy/Caddyfile reads.
func caddyfileVars(t *testing.T) map[string]bool {
	t.Helper()
	vars := map[string]bool{}
	for _, m := range regexp.MustCompile(`\{\$([A-Z0-9_]+)`).FindAllStringSubmatch(readDeployFile(t, "Caddyfile"), -1) {
		vars[m[1]] = true
	}
	return vars
}

func goModVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod has no go directive")
	}
	return string(m[1])
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

// parseEnvFile reads a systemd EnvironmentFile of plain KEY=VALUE lines.
func parseEnvFile(t *testing.T, file string) (map[string]string, []string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	var order []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(v, `"'\$`) {
			t.Fatalf("%s:%d: %q is not a plain KEY=VALUE line", file, i+1, line)
		}
		env[k] = v
		order = append(order, k)
	}
	return env, order
}

// unitFile is a parsed systemd unit: section -> key -> values.
type unitFile struct {
	name     string
	sections map[string]map[string][]string
}

func parseUnitFile(t *testing.T, name string) unitFile {
	t.Helper()
	u := unitFile{name: name, sections: map[string]map[string][]string{}}
	section := ""
	for _, line := range strings.Split(readDeployFile(t, "systemd", name), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u.sections[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot parse %q", name, line)
			}
			u.sections[section][k] = append(u.sections[section][k], v)
		}
	}
	return u
}

// one returns the single value of key in section ("" when absent).
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u.sections[section][key]
	if len(vs) > 1 {
		t.Errorf("%s: [%s] %s is set %d times", u.name, section, key, len(vs))
	}
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// ---- Dockerfile --------------------------------------------------------------

type dockerfile struct {
	text   string
	args   map[string]string // global ARGs (before the first FROM)
	stages []dockerStage
}

type dockerStage struct {
	From, Name string
	instrs     [][2]string // instruction, arguments
}

// parseDockerfile reads deploy/Dockerfile: continuation lines joined,
// comments dropped.
func parseDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	df := &dockerfile{text: readDeployFile(t, "Dockerfile"), args: map[string]string{}}
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(df.text, "\n") {
		trim := strings.TrimSpace(line)
		if trim == "" || strings.HasPrefix(trim, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(trim, "\\"); ok {
			cur.WriteString(body)
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(trim)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		instr, rest, _ := strings.Cut(l, " ")
		instr, rest = strings.ToUpper(instr), strings.TrimSpace(rest)
		switch {
		case instr == "FROM":
			f := strings.Fields(rest)
			st := dockerStage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			df.stages = append(df.stages, st)
		case len(df.stages) == 0 && instr == "ARG":
			k, v, _ := strings.Cut(rest, "=")
			df.args[k] = v
		case len(df.stages) == 0:
			t.Fatalf("deploy/Dockerfile: %s before the first FROM", instr)
		default:
			st := &df.stages[len(df.stages)-1]
			st.instrs = append(st.instrs, [2]string{instr, rest})
		}
	}
	if len(df.stages) == 0 {
		t.Fatalf("deploy/Dockerfile has no FROM")
	}
	return df
}

// expand substitutes ${NAME} of the global ARGs.
func (df *dockerfile) expand(s string) string {
	return os.Expand(s, func(k string) string { return df.args[k] })
}

func (df *dockerfile) stage(t *testing.T, name string) dockerStage {
	t.Helper()
	for _, st := range df.stages {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("deploy/Dockerfile has no stage %q", name)
	return dockerStage{}
}

// finalStage is the stage `docker build` builds without --target.
func (df *dockerfile) finalStage(t *testing.T) dockerStage {
	t.Helper()
	return df.stages[len(df.stages)-1]
}

// all returns the arguments of every instr instruction of the stage.
func (s dockerStage) all(instr string) []string {
	var out []string
	for _, in := range s.instrs {
		if in[0] == instr {
			out = append(out, in[1])
		}
	}
	return out
}

// env returns the stage's ENV (KEY=VALUE form, unquoted) and its order.
func (s dockerStage) env(t *testing.T) (map[string]string, []string) {
	t.Helper()
	env := map[string]string{}
	var order []string
	for _, args := range s.all("ENV") {
		for _, kv := range strings.Fields(args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.ContainsAny(v, `"'\$`) {
				t.Fatalf("deploy/Dockerfile stage %s: ENV %q is not in the plain KEY=VALUE form this test reads", s.Name, args)
			}
			if _, dup := env[k]; !dup {
				order = append(order, k)
			}
			env[k] = v
		}
	}
	return env, order
}

// execForm returns the JSON array of the stage's single instr instruction.
func (s dockerStage) execForm(t *testing.T, instr string) []string {
	t.Helper()
	all := s.all(instr)
	if len(all) != 1 {
		t.Fatalf("deploy/Dockerfile stage %s has %d %s instructions, want 1", s.Name, len(all), instr)
	}
	var v []string
	if err := json.Unmarshal([]byte(all[0]), &v); err != nil {
		t.Fatalf("deploy/Dockerfile stage %s: %s %s is not the exec (JSON) form", s.Name, instr, all[0])
	}
	return v
}

// ---- YAML subset ---------------------------------------------------------------

// parseYAMLFile parses the YAML subset deploy/ uses into map[string]any,
// []any and string: block mappings and sequences (two-space steps, items
// "- key: v" included), plain and quoted scalars, flow sequences of
// scalars, {} and | block scalars, comments and --- separators. Anything
// else fails the test, naming the line.
func parseYAMLFile(t *testing.T, file string) []any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var docs []any
	start := 0
	for i := 0; i <= len(lines); i++ {
		if i < len(lines) && strings.TrimRight(lines[i], " ") != "---" {
			continue
		}
		p := &yamlParser{t: t, file: file, lines: slices.Clone(lines[start:i]), first: start + 1}
		if doc := p.document(); doc != nil {
			docs = append(docs, doc)
		}
		start = i + 1
	}
	return docs
}

type yamlParser struct {
	t     *testing.T
	file  string
	lines []string
	first int // line number of lines[0]
	pos   int
}

func (p *yamlParser) failf(format string, args ...any) {
	p.t.Helper()
	p.t.Fatalf("%s:%d: %s", p.file, p.first+p.pos, fmt.Sprintf(format, args...))
}

// peek returns the next structural line's indent and text (comments
// stripped), skipping blank and comment lines.
func (p *yamlParser) peek() (int, string, bool) {
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		trim := strings.TrimSpace(l)
		if trim == "" || strings.HasPrefix(trim, "#") {
			p.pos++
			continue
		}
		if strings.Contains(l, "\t") {
			p.failf("tab in indentation")
		}
		return len(l) - len(strings.TrimLeft(l, " ")), stripYAMLComment(trim), true
	}
	return 0, "", false
}

func (p *yamlParser) document() any {
	indent, _, ok := p.peek()
	if !ok {
		return nil
	}
	v := p.block(indent)
	if _, _, ok := p.peek(); ok {
		p.failf("unexpected content")
	}
	return v
}

func isSeqItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

func (p *yamlParser) block(indent int) any {
	if _, text, _ := p.peek(); isSeqItem(text) {
		return p.sequence(indent)
	}
	return p.mapping(indent)
}

func (p *yamlParser) sequence(indent int) []any {
	out := []any{}
	for {
		ind, text, ok := p.peek()
		if !ok || ind != indent || !isSeqItem(text) {
			if ok && ind > indent {
				p.failf("unexpected indentation")
			}
			return out
		}
		rest := strings.TrimSpace(strings.TrimPrefix(text, "-"))
		if rest == "" {
			p.pos++
			ind, _, ok := p.peek()
			if !ok || ind <= indent {
				p.failf("empty sequence item")
			}
			out = append(out, p.block(ind))
			continue
		}
		if _, _, isKey := splitYAMLKey(rest); isKey {
			// "- key: v" opens a mapping at the item's content column.
			col := indent + strings.Index(text, rest)
			p.lines[p.pos] = strings.Repeat(" ", col) + rest
			out = append(out, p.mapping(col))
			continue
		}
		p.pos++
		out = append(out, p.scalar(rest))
	}
}

func (p *yamlParser) mapping(indent int) map[string]any {
	out := map[string]any{}
	for {
		ind, text, ok := p.peek()
		if !ok || ind < indent {
			return out
		}
		if ind > indent || isSeqItem(text) {
			p.failf("unexpected indentation or sequence item")
		}
		key, val, isKey := splitYAMLKey(text)
		if !isKey {
			p.failf("expected key: value, got %q", text)
		}
		if _, dup := out[key]; dup {
			p.failf("duplicate key %q", key)
		}
		p.pos++
		switch val {
		case "":
			if nind, ntext, ok := p.peek(); ok && (nind > indent || (nind == indent && isSeqItem(ntext))) {
				out[key] = p.block(nind)
			} else {
				out[key] = ""
			}
		case "|", "|-":
			out[key] = p.blockScalar(indent, val == "|-")
		default:
			out[key] = p.scalar(val)
		}
	}
}

// blockScalar reads the lines indented deeper than the key's.
func (p *yamlParser) blockScalar(keyIndent int, strip bool) string {
	var body []string
	blockIndent := -1
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if strings.TrimSpace(l) == "" {
			body = append(body, "")
			p.pos++
			continue
		}
		ind := len(l) - len(strings.TrimLeft(l, " "))
		if ind <= keyIndent {
			break
		}
		if blockIndent < 0 {
			blockIndent = ind
		}
		if ind < blockIndent {
			p.failf("block scalar line less indented than its first line")
		}
		body = append(body, l[blockIndent:])
		p.pos++
	}
	s := strings.TrimRight(strings.Join(body, "\n"), "\n")
	if !strip {
		s += "\n"
	}
	return s
}

func (p *yamlParser) scalar(v string) any {
	switch {
	case v == "{}":
		return map[string]any{}
	case strings.HasPrefix(v, "["):
		if !strings.HasSuffix(v, "]") {
			p.failf("unterminated flow sequence %q", v)
		}
		out := []any{}
		if inner := strings.TrimSpace(v[1 : len(v)-1]); inner != "" {
			for _, item := range strings.Split(inner, ",") {
				out = append(out, p.scalar(strings.TrimSpace(item)))
			}
		}
		return out
	case strings.HasPrefix(v, `"`):
		s, err := strconv.Unquote(v)
		if err != nil {
			p.failf("bad double-quoted scalar %s", v)
		}
		return s
	case strings.HasPrefix(v, "'"):
		if len(v) < 2 || !strings.HasSuffix(v, "'") {
			p.failf("bad single-quoted scalar %s", v)
		}
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'")
	case strings.HasPrefix(v, "{") || strings.HasPrefix(v, "&") || strings.HasPrefix(v, "*") || strings.HasPrefix(v, ">") || strings.HasPrefix(v, "!"):
		p.failf("unsupported YAML %q", v)
	}
	return v
}

// splitYAMLKey splits "key: value" or "key:"; quoted text is never a key.
func splitYAMLKey(text string) (key, val string, ok bool) {
	if strings.HasPrefix(text, `"`) || strings.HasPrefix(text, "'") || strings.HasPrefix(text, "[") {
		return "", "", false
	}
	if i := strings.Index(text, ": "); i > 0 {
		return text[:i], strings.TrimSpace(text[i+2:]), true
	}
	if k, ok := strings.CutSuffix(text, ":"); ok && k != "" && !strings.Contains(k, " ") {
		return k, "", true
	}
	return "", "", false
}

// stripYAMLComment drops a " #" comment outside quotes.
func stripYAMLComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && i > 0 && s[i-1] == ' ':
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

// yget walks maps by keys; a missing key fails the test.
func yget(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for i, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("YAML %s: not a mapping", strings.Join(keys[:i], "."))
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("YAML has no %s", strings.Join(keys[:i+1], "."))
		}
	}
	return v
}

func ystr(t *testing.T, v any, keys ...string) string {
	t.Helper()
	s, ok := yget(t, v, keys...).(string)
	if !ok {
		t.Fatalf("YAML %s is not a scalar", strings.Join(keys, "."))
	}
	return s
}

func ymap(t *testing.T, v any, keys ...string) map[string]any {
	t.Helper()
	m, ok := yget(t, v, keys...).(map[string]any)
	if !ok {
		t.Fatalf("YAML %s is not a mapping", strings.Join(keys, "."))
	}
	return m
}

func ylist(t *testing.T, v any, keys ...string) []any {
	t.Helper()
	l, ok := yget(t, v, keys...).([]any)
	if !ok {
		t.Fatalf("YAML %s is not a sequence", strings.Join(keys, "."))
	}
	return l
}

func ystrings(t *testing.T, v any, keys ...string) []string {
	t.Helper()
	var out []string
	for _, item := range ylist(t, v, keys...) {
		s, ok := item.(string)
		if !ok {
			t.Fatalf("YAML %s holds a non-scalar", strings.Join(keys, "."))
		}
		out = append(out, s)
	}
	return out
}

func mapsEqual(a, b map[string]any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
