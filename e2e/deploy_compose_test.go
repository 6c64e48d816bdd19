package e2e

// Tests of deploy/reference/docker-compose.yml, loaded with compose-go, the
// loader of `docker compose` itself: schema validation, interpolation and
// relative paths resolved against the file's directory exactly as
// `docker compose -f deploy/reference/docker-compose.yml up` does from the
// repository root.

import (
	"context"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads the reference compose file with env as the only
// environment (nothing of the developer's leaks in), as `docker compose
// config` does.
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	return loadComposeFile(t, referenceFile("docker-compose.yml"), env)
}

// loadComposeFile loads a compose file as loadCompose does, with profiles
// enabled as `docker compose --profile P` does.
func loadComposeFile(t *testing.T, file string, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithEnv(kv), cli.WithDotEnv, cli.WithConsistency(true), cli.WithProfiles(profiles))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker compose -f %s config: %v", relPath(file), err)
	}
	return p
}

// composeRawEnv is a service's environment as written, before
// interpolation.
func composeRawEnv(t *testing.T, service string) map[string]string {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{referenceFile("docker-compose.yml")},
		cli.WithEnv(nil), cli.WithInterpolation(false), cli.WithNormalization(false), cli.WithConsistency(false), cli.WithResolvedPaths(false))
	if err != nil {
		t.Fatal(err)
	}
	model, err := opts.LoadModel(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	services, _ := model["services"].(map[string]any)
	svc, _ := services[service].(map[string]any)
	raw, ok := svc["environment"].(map[string]any)
	if !ok {
		t.Fatalf("docker-compose.yml service %s: environment is not a mapping (%T)", service, svc["environment"])
	}
	env := map[string]string{}
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("docker-compose.yml service %s: environment %s=%v is not a string; quote it", service, k, v)
		}
		env[k] = s
	}
	return env
}

func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %s", name)
	}
	return s
}

// composeEnv flattens a service's environment; a name without a value
// (passed through from the host) fails the test.
func composeEnv(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range s.Environment {
		if v == nil {
			t.Fatalf("docker-compose.yml service %s: %s has no value (it would come from the host's environment)", s.Name, k)
		}
		env[k] = *v
	}
	return env
}

// TestDeployCompose checks the compose file against the image, the
// gateway's variables and the Caddyfile: the gateway built from
// deploy/Dockerfile with the repository root as context, listening on 7331
// only inside the compose network, its database and token store in a named
// volume at /data, the module mounted read-only at /workspace from a
// directory that holds one; Caddy publishing 80 and 443 with the Caddyfile
// and probing the gateway's /health.
func TestDeployCompose(t *testing.T) {
	t.Parallel()
	known := gatewayEnvVars(t)
	df := parseDockerfile(t)
	imageEnv, _ := df.final().env(t)
	p := loadCompose(t, nil)

	gw := composeService(t, p, "gateway")
	if gw.Build == nil {
		t.Fatalf("compose gateway has no build: `up` could not build the image")
	}
	if gw.Build.Context != moduleRoot || filepath.Join(gw.Build.Context, gw.Build.Dockerfile) != deployFile("Dockerfile") {
		t.Errorf("compose builds %s with context %s, want deploy/Dockerfile with the repository root %s", gw.Build.Dockerfile, gw.Build.Context, moduleRoot)
	}
	df.stage(t, gw.Build.Target)
	if gw.Init == nil || !*gw.Init {
		t.Errorf("compose gateway: init is not true (nothing reaps t.exec orphans)")
	}
	if gw.StopGracePeriod == nil {
		t.Errorf("compose gateway has no stop_grace_period: SIGKILL would follow SIGTERM after 10 s")
	}

	env := composeEnv(t, gw)
	rawEnv := composeRawEnv(t, "gateway")
	interp := regexp.MustCompile(`^\$\{([A-Z0-9_]+):-([^}]*)\}$`)
	for name, value := range env {
		checkGatewayVar(t, known, "compose gateway environment", name, value, true)
		if m := interp.FindStringSubmatch(rawEnv[name]); m != nil {
			if m[1] != name {
				t.Errorf("compose gateway environment: %s: %s, want it overridable by ${%s:-...}", name, rawEnv[name], name)
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
	// The reference page: 7331 inside the network, the SQLite volume at
	// /data, the token store /data/tokens.json.
	if env["PORT"] != "7331" || env["SMITHERS_TOKEN_STORE"] != "/data/tokens.json" || path.Dir(env["SMITHERS_DB_PATH"]) != "/data" {
		t.Errorf("compose gateway: PORT %s, SMITHERS_TOKEN_STORE %s, SMITHERS_DB_PATH %s; want 7331, /data/tokens.json and a database in /data",
			env["PORT"], env["SMITHERS_TOKEN_STORE"], env["SMITHERS_DB_PATH"])
	}

	moduleDir := path.Dir(env["SMITHERS_GATEWAY_MODULE"])
	dataDir := path.Dir(env["SMITHERS_DB_PATH"])
	var haveModule, haveData bool
	for _, v := range gw.Volumes {
		switch {
		case v.Target == moduleDir:
			haveModule = true
			if v.Type != types.VolumeTypeBind || !v.ReadOnly {
				t.Errorf("compose mounts %s at %s as %s (read-only %v), want a read-only bind mount", v.Source, v.Target, v.Type, v.ReadOnly)
			}
			if _, err := os.Stat(filepath.Join(v.Source, path.Base(env["SMITHERS_GATEWAY_MODULE"]))); err != nil {
				t.Errorf("compose mounts %s at %s, but it holds no module: %v", v.Source, moduleDir, err)
			}
		case v.Target == dataDir:
			haveData = true
			if _, ok := p.Volumes[v.Source]; v.Type != types.VolumeTypeVolume || !ok {
				t.Errorf("compose mounts %s (%s) at %s, want a declared named volume", v.Source, v.Type, dataDir)
			}
		}
	}
	if !haveModule || !haveData {
		t.Errorf("compose gateway volumes %+v: want the module directory read-only at %s and a named volume at %s", gw.Volumes, moduleDir, dataDir)
	}
	if !slices.Equal([]string(gw.Expose), []string{env["PORT"]}) {
		t.Errorf("compose gateway expose %q, want [%s]", gw.Expose, env["PORT"])
	}
	if len(gw.Ports) > 0 {
		t.Errorf("compose publishes the gateway's port: only Caddy should be reachable")
	}

	caddy := composeService(t, p, "caddy")
	if !strings.HasPrefix(caddy.Image, "caddy:2") {
		t.Errorf("compose caddy image %s, want caddy:2", caddy.Image)
	}
	if _, ok := caddy.DependsOn["gateway"]; !ok {
		t.Errorf("compose caddy does not depend on the gateway")
	}
	caddyVars := caddyfileVars(t, referenceFile("Caddyfile"))
	for name, v := range composeEnv(t, caddy) {
		if !caddyVars[name] {
			t.Errorf("compose caddy environment: the Caddyfile does not read %s", name)
		}
		if name == "SMITHERS_GATEWAY_UPSTREAM" && v != "gateway:"+env["PORT"] {
			t.Errorf("compose caddy SMITHERS_GATEWAY_UPSTREAM=%v, want gateway:%s", v, env["PORT"])
		}
	}
	if !slices.ContainsFunc(caddy.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Source == referenceFile("Caddyfile") && v.Target == "/etc/caddy/Caddyfile" && v.ReadOnly
	}) {
		t.Errorf("compose caddy does not mount deploy/reference/Caddyfile read-only at /etc/caddy/Caddyfile: %+v", caddy.Volumes)
	}
	published := map[string]bool{}
	for _, port := range caddy.Ports {
		published[port.Published+":"+port.Protocol] = true
	}
	if !published["80:tcp"] || !published["443:tcp"] {
		t.Errorf("compose caddy ports %+v, want 80 and 443 published", caddy.Ports)
	}
	if caddy.HealthCheck == nil || !strings.Contains(strings.Join(caddy.HealthCheck.Test, " "), "http://gateway:"+env["PORT"]+"/health") {
		t.Errorf("compose caddy healthcheck %+v does not probe the gateway's /health", caddy.HealthCheck)
	}

	// Every ${NAME} has a default (so that `up` needs nothing set) and is
	// the gateway's or a documented deploy-only variable.
	text := readText(t, referenceFile("docker-compose.yml"))
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)([^}]*)\}`).FindAllStringSubmatch(text, -1) {
		if _, ok := known[m[1]]; !ok && !deployOnlyVars[m[1]] {
			t.Errorf("docker-compose.yml interpolates ${%s}, which nothing documents", m[1])
		}
		if !strings.HasPrefix(m[2], ":-") {
			t.Errorf("docker-compose.yml: ${%s%s} has no default", m[1], m[2])
		}
	}

	// Overriding the workspace and the domain works as the file says.
	ws := t.TempDir()
	over := loadCompose(t, map[string]string{"SMITHERS_WORKSPACE": ws, "SMITHERS_DOMAIN": "smithers.example.com"})
	if !slices.ContainsFunc(composeService(t, over, "gateway").Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Source == ws && v.Target == moduleDir
	}) {
		t.Errorf("SMITHERS_WORKSPACE=%s does not replace the module mount", ws)
	}
	if d := composeEnv(t, composeService(t, over, "caddy"))["SMITHERS_DOMAIN"]; d != "smithers.example.com" {
		t.Errorf("SMITHERS_DOMAIN does not reach Caddy: %q", d)
	}
}

// TestDeployComposeTokenBootstrap runs the compose gateway service as
// `docker compose -f deploy/reference/docker-compose.yml up` starts it: its
// environment, a fresh (empty) data volume and the module mounted
// read-only. Without a token store it starts and refuses tokens; the
// command deploy/README.md gives (`... exec gateway /smithers token issue
// --scopes run:read,run:write,approval:submit --ttl 1h`, which writes the
// store named by the container's SMITHERS_TOKEN_STORE) makes a token that is
// accepted without a restart; `token revoke` takes it away again.
func TestDeployComposeTokenBootstrap(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	gw := composeService(t, p, "gateway")
	imageEnv, _ := parseDockerfile(t).final().env(t)

	// The container's environment: the image's ENV, then compose's.
	env := map[string]string{}
	for k, v := range imageEnv {
		env[k] = v
	}
	for k, v := range composeEnv(t, gw) {
		env[k] = v
	}
	root := t.TempDir()
	remap := pathRemap{}
	for _, v := range gw.Volumes {
		local := filepath.Join(root, strings.ReplaceAll(strings.Trim(v.Target, "/"), "/", "_"))
		if err := os.Mkdir(local, 0o755); err != nil {
			t.Fatal(err)
		}
		if v.Type == types.VolumeTypeBind {
			entries, err := os.ReadDir(v.Source)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Type().IsRegular() {
					copyFile(t, filepath.Join(v.Source, e.Name()), filepath.Join(local, e.Name()), 0o444)
				}
			}
		}
		if v.ReadOnly {
			makeReadOnlyDir(t, local)
		}
		remap[v.Target] = local
	}
	home := filepath.Join(root, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	procEnv := baseEnv(home)
	for k, v := range env {
		switch k {
		case "HOST":
			v = "127.0.0.1"
		case "PORT":
			v = "0"
		default:
			v = remap.apply(v)
		}
		procEnv = append(procEnv, k+"="+v)
	}
	store := remap.apply(env["SMITHERS_TOKEN_STORE"])
	if _, err := os.Stat(store); err == nil {
		t.Fatalf("a fresh volume already holds the token store %s", store)
	}

	g := startBinaryGateway(t, binPath, home, procEnv, "gateway")
	checkHealth(t, g.URL)
	assertUnauthorized(t, g, "smithers_anything", "")
	// The log says why every token is refused (a warning or an error).
	said := func() bool {
		return hasLog(g.Stderr(), "WARN", "token store", store) || hasLog(g.Stderr(), "ERROR", "token store", store)
	}
	for end := time.Now().Add(5 * time.Second); !said() && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond) // stderr is copied apart from stdout
	}
	if !said() {
		t.Errorf("no warning or error in the gateway's log names the missing token store %s:\n%s", store, g.Stderr())
	}

	// docker compose ... exec gateway /smithers token issue --scopes run:read,run:write,approval:submit --ttl 1h
	code, out, errOut := runToExit(t, home, procEnv, "token", "issue", "--scopes", "run:read,run:write,approval:submit", "--ttl", "1h")
	token, _, _ := strings.Cut(out, "\n")
	if code != 0 || token == "" {
		t.Fatalf("token issue in the container's environment exited %d: %s %s", code, out, errOut)
	}
	if _, err := os.Stat(store); err != nil {
		t.Fatalf("token issue without --store did not write SMITHERS_TOKEN_STORE %s: %v", store, err)
	}
	g.Token = token
	eventually(t, tokenEffectTimeout, "the issued token to be accepted without a restart", func() bool {
		return authorized(t, g, token)
	})
	runID := g.launch("quickstart", map[string]any{"name": "compose"})
	g.waitStatus(runID, "waiting-approval")
	g.approve(runID, "ship")
	g.waitStatus(runID, "finished")

	// docker compose ... exec gateway /smithers token revoke <token>
	if code, out, errOut := runToExit(t, home, procEnv, "token", "revoke", token); code != 0 {
		t.Fatalf("token revoke in the container's environment exited %d: %s %s", code, out, errOut)
	}
	eventually(t, tokenEffectTimeout, "the revoked token to be refused", func() bool {
		status, _ := postRPC(t, g.URL, token, "listWorkflows", map[string]any{})
		return status == http.StatusUnauthorized
	})
}
