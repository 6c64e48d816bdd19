package e2e

// Tests of deploy/replicated/: several gateways on one PostgreSQL database.
// The compose file is loaded with compose-go as `docker compose` loads it,
// the Caddyfile adapted and validated by the real Caddy, and the documents
// checked for the paths they name. deploy_replicated_k8s_test.go checks the
// Kubernetes manifests, deploy_replicated_pg_test.go runs three real
// gateways on a real PostgreSQL database behind Caddy.

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// replicatedGateways are the gateway services of
// deploy/replicated/docker-compose.yml, in the order its Caddyfile lists
// them as upstreams.
var replicatedGateways = []string{"gateway-1", "gateway-2", "gateway-3"}

// replicatedPasswordPlaceholder is the example database password the
// replicated deployment ships; deploy/README.md tells to replace it.
const replicatedPasswordPlaceholder = "change-me-example-password"

// replicatedCompose is deploy/replicated/docker-compose.yml, loaded with the
// tools profile (the tokens service) when tools is set.
func replicatedCompose(t *testing.T, env map[string]string, tools bool) *types.Project {
	t.Helper()
	var profiles []string
	if tools {
		profiles = append(profiles, "tools")
	}
	return loadComposeFile(t, replicatedFile("docker-compose.yml"), env, profiles...)
}

// containerEnv is a compose service's environment as its container sees
// it: the image's ENV, then the service's environment and env_file.
func containerEnv(t *testing.T, imageEnv map[string]string, s types.ServiceConfig) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range imageEnv {
		env[k] = v
	}
	for k, v := range composeEnv(t, s) {
		env[k] = v
	}
	return env
}

// parseDatabaseURL parses a postgres:// URL and fails unless it names a
// host, a user with a password and a database.
func parseDatabaseURL(t *testing.T, where, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: SMITHERS_DATABASE_URL does not parse: %v", where, err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		t.Errorf("%s: SMITHERS_DATABASE_URL scheme %q, want postgres:// (the gateway refuses anything else)", where, u.Scheme)
	}
	if pw, ok := u.User.Password(); u.Hostname() == "" || u.User.Username() == "" || !ok || pw == "" || strings.Trim(u.Path, "/") == "" {
		t.Errorf("%s: SMITHERS_DATABASE_URL %s does not name a host, a user with a password and a database", where, u.Redacted())
	}
	return u
}

// TestDeployReplicatedCompose checks the replicated compose file against
// the image, the gateway's variables, the reference deployment and the
// Caddyfile: a postgres service (the official image, a named volume, a
// pg_isready healthcheck, credentials from an env file); three gateway
// services on the reference deployment's image, each waiting for a
// healthy database, with one and the same database URL (the postgres
// service's user, password and database) and no SQLite path (the image's
// is blanked), the module read-only and the token store a named volume
// every replica mounts read-only; a tokens service, outside `up`, that
// writes that volume; Caddy in front of the three, with the replicated
// Caddyfile.
func TestDeployReplicatedCompose(t *testing.T) {
	t.Parallel()
	known := gatewayEnvVars(t)
	df := parseDockerfile(t)
	imageEnv, _ := df.final().env(t)
	p := replicatedCompose(t, nil, false)
	ref := composeService(t, loadCompose(t, nil), "gateway")

	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	if want := append([]string{"caddy"}, append(slices.Clone(replicatedGateways), "postgres")...); !slices.Equal(names, want) {
		t.Errorf("docker compose up starts %q, want %q", names, want)
	}

	// The database.
	pg := composeService(t, p, "postgres")
	if !regexp.MustCompile(`^postgres:\d+`).MatchString(pg.Image) {
		t.Errorf("compose postgres image %q, want the official image with a major version (postgres:N)", pg.Image)
	}
	if !slices.ContainsFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
		_, declared := p.Volumes[v.Source]
		return v.Type == types.VolumeTypeVolume && declared && v.Target == "/var/lib/postgresql/data"
	}) {
		t.Errorf("compose postgres volumes %+v: want a named volume at /var/lib/postgresql/data", pg.Volumes)
	}
	if pg.HealthCheck == nil || !strings.Contains(strings.Join(pg.HealthCheck.Test, " "), "pg_isready") {
		t.Errorf("compose postgres healthcheck %+v does not run pg_isready", pg.HealthCheck)
	}
	if len(pg.Ports) > 0 {
		t.Errorf("compose publishes PostgreSQL's port: only Caddy should be reachable")
	}
	pgEnv := composeEnv(t, pg)
	for _, name := range []string{"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} {
		if pgEnv[name] == "" {
			t.Errorf("compose postgres: %s is not set (postgres.env)", name)
		}
	}
	if len(pg.EnvFiles) == 0 {
		t.Errorf("compose postgres: the credentials are not read from an env file")
	}
	composeText := readText(t, replicatedFile("docker-compose.yml"))
	for i, line := range strings.Split(composeText, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, pgEnv["POSTGRES_PASSWORD"]) {
			t.Errorf("docker-compose.yml:%d holds the database password itself; it belongs in the env files", i+1)
		}
	}
	if !strings.Contains(pgEnv["POSTGRES_PASSWORD"], "change-me") {
		t.Errorf("postgres.env's password %q is not an obvious placeholder", pgEnv["POSTGRES_PASSWORD"])
	}
	pgPort := "5432"
	if len(pg.Expose) > 0 {
		pgPort = pg.Expose[0]
	}

	// The three gateways.
	var dbURL string
	tokenVolume := map[string]bool{}
	for _, name := range replicatedGateways {
		gw := composeService(t, p, name)
		where := "compose " + name
		if gw.Image != ref.Image {
			t.Errorf("%s runs image %q, want the reference deployment's %q", where, gw.Image, ref.Image)
		}
		if gw.Build != nil && !reflect.DeepEqual(gw.Build, ref.Build) {
			t.Errorf("%s builds %+v, want the reference deployment's build %+v", where, gw.Build, ref.Build)
		}
		if gw.Init == nil || !*gw.Init {
			t.Errorf("%s: init is not true (nothing reaps t.exec orphans)", where)
		}
		if gw.StopGracePeriod == nil {
			t.Errorf("%s has no stop_grace_period: SIGKILL would follow SIGTERM after 10 s", where)
		}
		if dep, ok := gw.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s depends_on %+v, want postgres with condition service_healthy", where, gw.DependsOn)
		}

		env := composeEnv(t, gw)
		for k, v := range env {
			// The blanked SQLite path and the URL have no default to match.
			checkGatewayVar(t, known, where+" environment", k, v, k != "SMITHERS_DB_PATH" && k != "SMITHERS_DATABASE_URL")
		}
		cenv := containerEnv(t, imageEnv, gw)
		if cenv["SMITHERS_DB_PATH"] != "" {
			t.Errorf("%s: the container's SMITHERS_DB_PATH is %q (the image sets it): with SMITHERS_DATABASE_URL the gateway refuses to start; set it to \"\"", where, cenv["SMITHERS_DB_PATH"])
		}
		if dbURL == "" {
			dbURL = cenv["SMITHERS_DATABASE_URL"]
		} else if cenv["SMITHERS_DATABASE_URL"] != dbURL {
			t.Errorf("%s: SMITHERS_DATABASE_URL differs from %s's: the replicas must share one database", where, replicatedGateways[0])
		}
		for _, req := range requiredDeployVars {
			if _, ok := env[req]; !ok {
				t.Errorf("%s environment does not set %s", where, req)
			}
		}

		moduleDir := path.Dir(env["SMITHERS_GATEWAY_MODULE"])
		tokenDir := path.Dir(env["SMITHERS_TOKEN_STORE"])
		var haveModule, haveTokens bool
		for _, v := range gw.Volumes {
			switch v.Target {
			case moduleDir:
				haveModule = true
				if v.Type != types.VolumeTypeBind || !v.ReadOnly {
					t.Errorf("%s mounts %s at %s as %s (read-only %v), want a read-only bind mount", where, v.Source, v.Target, v.Type, v.ReadOnly)
				}
				if _, err := os.Stat(filepath.Join(v.Source, path.Base(env["SMITHERS_GATEWAY_MODULE"]))); err != nil {
					t.Errorf("%s mounts %s at %s, but it holds no module: %v", where, v.Source, moduleDir, err)
				}
			case tokenDir:
				haveTokens = true
				if _, declared := p.Volumes[v.Source]; v.Type != types.VolumeTypeVolume || !declared || !v.ReadOnly {
					t.Errorf("%s mounts %s (%s, read-only %v) at %s, want a declared named volume, read-only", where, v.Source, v.Type, v.ReadOnly, tokenDir)
				}
				tokenVolume[v.Source] = true
			default:
				t.Errorf("%s mounts %s at %s: a replica keeps nothing of its own", where, v.Source, v.Target)
			}
		}
		if !haveModule || !haveTokens {
			t.Errorf("%s volumes %+v: want the module directory read-only at %s and the token volume at %s", where, gw.Volumes, moduleDir, tokenDir)
		}
		if !slices.Equal([]string(gw.Expose), []string{env["PORT"]}) {
			t.Errorf("%s expose %q, want [%s]", where, gw.Expose, env["PORT"])
		}
		if len(gw.Ports) > 0 {
			t.Errorf("%s publishes its port: only Caddy should be reachable", where)
		}
	}
	if len(tokenVolume) != 1 {
		t.Errorf("the replicas mount token volumes %v, want one shared by all", tokenVolume)
	}
	if !slices.ContainsFunc(replicatedGateways, func(name string) bool { return p.Services[name].Build != nil }) {
		t.Errorf("no gateway service builds the image: `up` would try to pull %s", ref.Image)
	}

	// One database: the postgres service's user, password, database and
	// port, on its service name.
	u := parseDatabaseURL(t, "gateway.env", dbURL)
	pw, _ := u.User.Password()
	if u.Hostname() != "postgres" || u.Port() != pgPort || u.User.Username() != pgEnv["POSTGRES_USER"] || pw != pgEnv["POSTGRES_PASSWORD"] ||
		strings.Trim(u.Path, "/") != pgEnv["POSTGRES_DB"] {
		t.Errorf("SMITHERS_DATABASE_URL %s is not postgres.env's user, password and database on postgres:%s", u.Redacted(), pgPort)
	}

	// The token tool: not started by `up`, writes the volume the replicas
	// read, where they read it.
	if _, ok := p.Services["tokens"]; ok {
		t.Errorf("docker compose up would start the tokens service")
	}
	gw1 := composeService(t, p, replicatedGateways[0])
	store := composeEnv(t, gw1)["SMITHERS_TOKEN_STORE"]
	tokens := composeService(t, replicatedCompose(t, nil, true), "tokens")
	if tokens.Image != ref.Image || len(tokens.Profiles) == 0 {
		t.Errorf("compose tokens: image %q, profiles %q; want %s under a profile", tokens.Image, tokens.Profiles, ref.Image)
	}
	if got := containerEnv(t, imageEnv, tokens)["SMITHERS_TOKEN_STORE"]; got != store {
		t.Errorf("compose tokens: SMITHERS_TOKEN_STORE=%s, want the replicas' %s", got, store)
	}
	if !slices.ContainsFunc(tokens.Volumes, func(v types.ServiceVolumeConfig) bool {
		return tokenVolume[v.Source] && v.Type == types.VolumeTypeVolume && v.Target == path.Dir(store) && !v.ReadOnly
	}) {
		t.Errorf("compose tokens volumes %+v: want the replicas' token volume writable at %s", tokens.Volumes, path.Dir(store))
	}
	if dir := path.Dir(store); imageEnv["SMITHERS_TOKEN_STORE"] == "" || path.Dir(imageEnv["SMITHERS_TOKEN_STORE"]) != dir {
		t.Errorf("the token volume is mounted at %s, not at the image's own directory of the store (%s), whose owner makes a new volume writable", dir, imageEnv["SMITHERS_TOKEN_STORE"])
	}

	// Caddy in front of the three.
	caddy := composeService(t, p, "caddy")
	if !strings.HasPrefix(caddy.Image, "caddy:2") {
		t.Errorf("compose caddy image %s, want caddy:2", caddy.Image)
	}
	port := composeEnv(t, gw1)["PORT"]
	for _, name := range replicatedGateways {
		if _, ok := caddy.DependsOn[name]; !ok {
			t.Errorf("compose caddy does not depend on %s", name)
		}
		if caddy.HealthCheck == nil || !strings.Contains(strings.Join(caddy.HealthCheck.Test, " "), "http://"+name+":"+port+"/health") {
			t.Errorf("compose caddy healthcheck %+v does not probe %s's /health", caddy.HealthCheck, name)
		}
	}
	caddyVars := caddyfileVars(t, replicatedFile("Caddyfile"))
	for name := range composeEnv(t, caddy) {
		if !caddyVars[name] {
			t.Errorf("compose caddy environment: the replicated Caddyfile does not read %s", name)
		}
	}
	if !slices.ContainsFunc(caddy.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Source == replicatedFile("Caddyfile") && v.Target == "/etc/caddy/Caddyfile" && v.ReadOnly
	}) {
		t.Errorf("compose caddy does not mount deploy/replicated/Caddyfile read-only at /etc/caddy/Caddyfile: %+v", caddy.Volumes)
	}
	published := map[string]bool{}
	for _, port := range caddy.Ports {
		published[port.Published+":"+port.Protocol] = true
	}
	if !published["80:tcp"] || !published["443:tcp"] {
		t.Errorf("compose caddy ports %+v, want 80 and 443 published", caddy.Ports)
	}

	// Every ${NAME} has a default and is the gateway's or a documented
	// deploy-only variable.
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)([^}]*)\}`).FindAllStringSubmatch(composeText, -1) {
		if _, ok := known[m[1]]; !ok && !deployOnlyVars[m[1]] {
			t.Errorf("deploy/replicated/docker-compose.yml interpolates ${%s}, which nothing documents", m[1])
		}
		if !strings.HasPrefix(m[2], ":-") {
			t.Errorf("deploy/replicated/docker-compose.yml: ${%s%s} has no default", m[1], m[2])
		}
	}

	// The workspace override reaches every replica.
	ws := t.TempDir()
	over := replicatedCompose(t, map[string]string{"SMITHERS_WORKSPACE": ws}, false)
	for _, name := range replicatedGateways {
		if !slices.ContainsFunc(composeService(t, over, name).Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Source == ws && v.Target == "/workspace"
		}) {
			t.Errorf("SMITHERS_WORKSPACE=%s does not replace %s's module mount", ws, name)
		}
	}
}

// TestDeployReplicatedCaddy adapts deploy/replicated/Caddyfile with the
// values the compose file gives it and validates it (`caddy validate`
// provisions every module): one reverse proxy whose upstreams are the
// three gateway services on their port, round-robin, each health-checked
// on the gateway's /health; and, that proxy's upstream settings aside, the
// same site as the reference deployment's Caddyfile (TLS, compression,
// headers, request id).
func TestDeployReplicatedCaddy(t *testing.T) {
	t.Parallel()
	caddy := needTool(t, "caddy", "apt-get install caddy")
	caddyfile := replicatedFile("Caddyfile")
	p := replicatedCompose(t, nil, false)
	port := composeEnv(t, composeService(t, p, replicatedGateways[0]))["PORT"]
	composeCaddy := composeEnv(t, composeService(t, p, "caddy"))

	prodVars := map[string]string{"SMITHERS_DOMAIN": "smithers.example.com", "SMITHERS_TLS_EMAIL": "ops@example.com"}
	for _, vars := range []map[string]string{composeCaddy, prodVars} {
		cfg, stderr := caddyAdapt(t, caddy, caddyfile, caddyEnv(t, vars))
		if strings.Contains(stderr, "warn") || strings.Contains(stderr, "WARN") {
			t.Errorf("caddy adapt warns about deploy/replicated/Caddyfile with %v:\n%s", vars, stderr)
		}
		validate := exec.Command(caddy, "validate", "--config", caddyfile, "--adapter", "caddyfile")
		validate.Env = caddyEnv(t, vars)
		if out, err := validate.CombinedOutput(); err != nil {
			t.Errorf("caddy validate deploy/replicated/Caddyfile with %v: %v\n%s", vars, err, out)
		}

		proxies := reverseProxies(t, cfg.raw)
		if len(proxies) != 1 {
			t.Fatalf("deploy/replicated/Caddyfile adapts to %d reverse_proxy handlers, want 1", len(proxies))
		}
		var rp struct {
			Upstreams []struct {
				Dial string `json:"dial"`
			} `json:"upstreams"`
			LoadBalancing struct {
				SelectionPolicy struct {
					Policy string `json:"policy"`
				} `json:"selection_policy"`
				TryDuration int64 `json:"try_duration"`
			} `json:"load_balancing"`
			HealthChecks struct {
				Active *struct {
					URI         string `json:"uri"`
					Path        string `json:"path"`
					ExpectCode  any    `json:"expect_status"`
					IntervalNs  int64  `json:"interval"`
					TimeoutNs   int64  `json:"timeout"`
					HealthyPort int    `json:"port"`
				} `json:"active"`
				Passive *struct {
					FailDuration int64 `json:"fail_duration"`
				} `json:"passive"`
			} `json:"health_checks"`
			Headers struct {
				Request struct {
					Set map[string][]string `json:"set"`
				} `json:"request"`
			} `json:"headers"`
		}
		if err := json.Unmarshal(proxies[0], &rp); err != nil {
			t.Fatal(err)
		}
		var dials []string
		for _, u := range rp.Upstreams {
			dials = append(dials, u.Dial)
		}
		var want []string
		for _, name := range replicatedGateways {
			want = append(want, name+":"+port)
		}
		if !slices.Equal(dials, want) {
			t.Errorf("reverse_proxy upstreams %q, want the compose gateway services %q", dials, want)
		}
		if rp.LoadBalancing.SelectionPolicy.Policy != "round_robin" {
			t.Errorf("reverse_proxy selection policy %q, want round_robin", rp.LoadBalancing.SelectionPolicy.Policy)
		}
		if rp.LoadBalancing.TryDuration <= 0 {
			t.Errorf("reverse_proxy has no try_duration: a request reaching a stopped replica fails instead of going to another")
		}
		if a := rp.HealthChecks.Active; a == nil || (a.URI != "/health" && a.Path != "/health") || a.IntervalNs <= 0 || a.HealthyPort != 0 {
			t.Errorf("reverse_proxy active health check %+v, want GET /health on each upstream's own port", a)
		}
		if rp.HealthChecks.Passive == nil || rp.HealthChecks.Passive.FailDuration <= 0 {
			t.Errorf("reverse_proxy has no passive health check (fail_duration)")
		}
		if got := rp.Headers.Request.Set["X-Request-Id"]; !slices.Equal(got, []string{"{http.request.uuid}"}) {
			t.Errorf("reverse_proxy sets X-Request-Id %q, want {http.request.uuid} as the reference deployment", got)
		}

		// The site is the reference deployment's, but for the proxy's
		// upstreams, load balancing and health checks.
		refCfg, _ := caddyAdapt(t, caddy, referenceFile("Caddyfile"), caddyEnv(t, vars))
		if a, b := siteWithoutUpstreams(t, cfg.raw), siteWithoutUpstreams(t, refCfg.raw); a != b {
			t.Errorf("with %v, deploy/replicated/Caddyfile's site differs from deploy/reference/Caddyfile's beyond the upstreams:\nreplicated: %s\nreference:  %s", vars, a, b)
		}
	}
}

// reverseProxies returns every reverse_proxy handler of an adapted Caddy
// config, as JSON.
func reverseProxies(t *testing.T, raw string) []json.RawMessage {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	var found []json.RawMessage
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "reverse_proxy" {
				b, _ := json.Marshal(v)
				found = append(found, b)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	return found
}

// siteWithoutUpstreams is an adapted Caddy config as canonical JSON, with
// the reverse proxies' upstreams, load balancing and health checks left
// out.
func siteWithoutUpstreams(t *testing.T, raw string) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	var strip func(v any)
	strip = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "reverse_proxy" {
				delete(v, "upstreams")
				delete(v, "load_balancing")
				delete(v, "health_checks")
			}
			for _, c := range v {
				strip(c)
			}
		case []any:
			for _, c := range v {
				strip(c)
			}
		}
	}
	strip(doc)
	b, err := json.Marshal(doc) // map keys sorted
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeployReplicatedDocs checks the documents: every deploy/... path
// named in the READMEs and docs/ exists; deploy/README.md has the
// replicated deployment's section with its commands and tells to replace
// the example password; the docs index links the deployment page.
func TestDeployReplicatedDocs(t *testing.T) {
	t.Parallel()
	docs := []string{deployFile("README.md"), filepath.Join(moduleRoot, "README.md")}
	pages, err := filepath.Glob(filepath.Join(moduleRoot, "docs", "*.md"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("docs/*.md: %v (%d pages)", err, len(pages))
	}
	docs = append(docs, pages...)
	for _, file := range docs {
		checkDeployPathsExist(t, file)
		if m := outsideDoc.FindString(readText(t, file)); m != "" {
			t.Errorf("%s refers to %s, which is not part of the repository", relPath(file), m)
		}
	}

	readme := readText(t, deployFile("README.md"))
	_, section, ok := strings.Cut(readme, "\n## Replicated (PostgreSQL)\n")
	if !ok {
		t.Fatalf("deploy/README.md has no \"Replicated (PostgreSQL)\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, want := range []string{
		"docker compose -f deploy/replicated/docker-compose.yml up",
		"docker compose -f deploy/replicated/docker-compose.yml run --rm tokens token issue",
		"kubectl apply -f deploy/replicated/k8s/",
		replicatedPasswordPlaceholder,
		"database-secret.example.yaml",
		"docs/deployment.md",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("deploy/README.md's Replicated (PostgreSQL) section does not mention %q", want)
		}
	}
	for _, f := range []string{"postgres.env", "gateway.env"} {
		if !strings.Contains(readText(t, replicatedFile(f)), replicatedPasswordPlaceholder) {
			t.Errorf("deploy/replicated/%s does not hold the placeholder password %s the README tells to replace", f, replicatedPasswordPlaceholder)
		}
	}
	if !strings.Contains(readText(t, filepath.Join(moduleRoot, "docs", "README.md")), "(deployment.md)") {
		t.Errorf("docs/README.md does not link deployment.md")
	}
}
