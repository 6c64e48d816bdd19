package e2e

// The upstream reference deployment page, checked against deploy/: each
// command and path it gives works here as written, and every variable any
// deployment file names is one the gateway (or Caddy) reads.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Paths and commands of the upstream reference deployment page, word for
// word.
const (
	pageComposeCommand = "docker compose -f deploy/reference/docker-compose.yml up"
	pageKubectlCommand = "kubectl apply -f deploy/reference/k8s/"
	pageEnvExample     = "smithers-gateway.env.example"
	pageEnvTarget      = "/etc/smithers/gateway.env"
)

var pagePaths = []string{
	"deploy/reference/docker-compose.yml",
	"deploy/reference/systemd/smithers-gateway.service",
	"deploy/reference/systemd/smithers-caddy.service",
	"deploy/reference/k8s/",
	"deploy/reference/k8s/secret.example.yaml",
	"deploy/reference/k8s/ingress.yaml",
}

// pageSingleHostSettings are the lines the page says to set in
// /etc/smithers/gateway.env.
var pageSingleHostSettings = []string{
	"SMITHERS_DB_PATH=/var/lib/smithers/smithers.db",
	"SMITHERS_TOKEN_STORE=/etc/smithers/tokens.json",
	"SMITHERS_GATEWAY_MODULE=/etc/smithers/gateway.mjs",
	"SMITHERS_GATEWAY_HEADERS_TIMEOUT_MS=30000",
	"SMITHERS_GATEWAY_REQUEST_TIMEOUT_MS=60000",
}

// pageEnvDefaults is the page's "Gateway Environment" table.
var pageEnvDefaults = map[string]string{
	"PORT":                                "7331",
	"SMITHERS_DB_PATH":                    "/data/smithers.db",
	"SMITHERS_TOKEN_STORE":                "/data/tokens.json",
	"SMITHERS_GATEWAY_MODULE":             "/workspace/gateway.mjs",
	"SMITHERS_GATEWAY_HEARTBEAT_MS":       "15000",
	"SMITHERS_GATEWAY_EVENT_WINDOW":       "10000",
	"SMITHERS_GATEWAY_HEADERS_TIMEOUT_MS": "30000",
	"SMITHERS_GATEWAY_REQUEST_TIMEOUT_MS": "60000",
}

// TestDeployReferencePage checks that every path the page names exists;
// that the environment file example it says to copy exists once under
// deploy/reference/ and holds the settings it lists; that the gateway's
// defaults are the page's; that its token commands work as written (the
// store then defaults to $HOME/.smithers/tokens.json); and that
// deploy/README.md gives its commands and names only paths that exist.
func TestDeployReferencePage(t *testing.T) {
	t.Parallel()
	for _, p := range pagePaths {
		fi, err := os.Stat(filepath.Join(moduleRoot, p))
		if err != nil {
			t.Errorf("the reference page's %s: %v", p, err)
		} else if strings.HasSuffix(p, "/") != fi.IsDir() {
			t.Errorf("the reference page's %s: directory %v", p, fi.IsDir())
		}
	}

	var examples []string
	err := filepath.WalkDir(referenceFile(), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == pageEnvExample {
			examples = append(examples, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) != 1 {
		t.Fatalf("deploy/reference holds %d files named %s (%q), want one", len(examples), pageEnvExample, examples)
	}
	example := readText(t, examples[0])
	for _, line := range pageSingleHostSettings {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).MatchString(example) {
			t.Errorf("%s does not set %s, as the reference page says to", relPath(examples[0]), line)
		}
	}
	if !strings.Contains(readText(t, referenceFile("systemd", "smithers-gateway.service")), "EnvironmentFile="+pageEnvTarget) {
		t.Errorf("smithers-gateway.service does not read %s, where the page copies the example", pageEnvTarget)
	}

	known := gatewayEnvVars(t)
	for name, def := range pageEnvDefaults {
		if v, ok := known[name]; !ok || v.def != def {
			t.Errorf("the page's default of %s is %s; the gateway's is %q (read: %v)", name, def, v.def, ok)
		}
	}

	// smithers token issue --scopes run:read,run:write,approval:submit --ttl 1h
	// smithers token revoke <token>
	home := t.TempDir()
	code, out, errOut := runToExit(t, home, baseEnv(home), "token", "issue", "--scopes", "run:read,run:write,approval:submit", "--ttl", "1h")
	token, _, _ := strings.Cut(out, "\n")
	if code != 0 || token == "" {
		t.Fatalf("smithers token issue --scopes run:read,run:write,approval:submit --ttl 1h exited %d: %s %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(home, ".smithers", "tokens.json")); err != nil {
		t.Errorf("token issue without --store or SMITHERS_TOKEN_STORE wrote no $HOME/.smithers/tokens.json: %v", err)
	}
	if code, out, errOut := runToExit(t, home, baseEnv(home), "token", "revoke", token); code != 0 || !strings.HasPrefix(out, "revoked ") {
		t.Errorf("smithers token revoke <token> exited %d: %s %s", code, out, errOut)
	}

	readme := readText(t, deployFile("README.md"))
	for _, cmd := range []string{pageComposeCommand, pageKubectlCommand} {
		if !strings.Contains(readme, cmd) {
			t.Errorf("deploy/README.md does not give the reference page's command %q", cmd)
		}
	}
	checkDeployPathsExist(t, deployFile("README.md"))
	checkDeployPathsExist(t, filepath.Join(moduleRoot, "README.md"))
}

// checkDeployPathsExist fails for every deploy/... path file mentions that
// does not exist.
func checkDeployPathsExist(t *testing.T, file string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?:^|[\s(\x60'"=])(deploy/[A-Za-z0-9_./-]*[A-Za-z0-9_/-])`).FindAllStringSubmatch(readText(t, file), -1) {
		if _, err := os.Stat(filepath.Join(moduleRoot, m[1])); err != nil {
			t.Errorf("%s names %s, which does not exist", relPath(file), m[1])
		}
	}
}

// TestDeployConfigTable checks that README.md's configuration table lists
// exactly the variables cmd/smithers/config.go reads.
func TestDeployConfigTable(t *testing.T) {
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
}

var smithersName = regexp.MustCompile(`SMITHERS_[A-Z0-9_]+`)

// outsideDoc matches references to design documents kept outside the
// repository.
var outsideDoc = regexp.MustCompile(`\.\./shared/|\b(?:DESIGN|CONTRACT)\.md\b`)

// TestDeployEnvNames checks every SMITHERS_* name anywhere under deploy/
// (files, comments and docs alike): each is the gateway's or a documented
// deploy-only one, so a renamed variable fails here. deploy/ also refers
// to nothing outside the repository.
func TestDeployEnvNames(t *testing.T) {
	t.Parallel()
	known := gatewayEnvVars(t)
	err := filepath.WalkDir(deployFile(), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel := relPath(p)
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
			if m := outsideDoc.FindString(line); m != "" {
				t.Errorf("%s:%d: refers to %s, which is not part of the repository", rel, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hasPrefixOf(known map[string]configVar, prefix string) bool {
	for name := range known {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
