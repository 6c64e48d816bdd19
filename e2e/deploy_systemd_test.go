package e2e

// Tests of deploy/reference/systemd: the units verified by systemd itself
// (systemd-analyze), parsed with go-systemd's unit parser for the
// directives the deployment relies on, and the gateway started with the
// environment file example.

import (
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"
)

// TestDeploySystemdUnits verifies the units with systemd-analyze (syntax,
// executables, and the hardening's exposure score), checks the directives
// the deployment relies on, and starts the gateway with the environment
// file example, paths moved into a temporary directory.
func TestDeploySystemdUnits(t *testing.T) {
	t.Parallel()
	analyze := needTool(t, "systemd-analyze", "apt-get install systemd")
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
		copyFile(t, referenceFile("systemd", u), filepath.Join(root, "etc/systemd/system", u), 0o644)
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
	if envFile != "/etc/smithers/gateway.env" {
		t.Errorf("smithers-gateway.service EnvironmentFile=%s, want /etc/smithers/gateway.env (where the reference page copies the example)", envFile)
	}
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
	caddyVars := caddyfileVars(t, referenceFile("Caddyfile"))
	example, order := parseEnvFile(t, referenceFile("smithers-gateway.env.example"))
	for _, name := range order {
		opt, isGateway := known[name]
		if !isGateway && !caddyVars[name] {
			t.Errorf("smithers-gateway.env.example sets %s, which neither the gateway nor the Caddyfile reads", name)
		}
		if isGateway && opt.hasDefault && strings.HasPrefix(name, "SMITHERS_GATEWAY_") && name != "SMITHERS_GATEWAY_MODULE" && example[name] != opt.def {
			t.Errorf("smithers-gateway.env.example: %s=%s, but the file says its tunables show the defaults (%s)", name, example[name], opt.def)
		}
	}
	for _, name := range requiredDeployVars {
		if _, ok := example[name]; !ok {
			t.Errorf("smithers-gateway.env.example does not set %s", name)
		}
	}
	if h := example["HOST"]; h != "127.0.0.1" {
		t.Errorf("smithers-gateway.env.example HOST=%s, want 127.0.0.1 (Caddy on the host is the way in)", h)
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
			t.Errorf("smithers-gateway.env.example %s=%s, want it in %s", name, example[name], etcDir)
		}
	}
	if up := example["SMITHERS_GATEWAY_UPSTREAM"]; up != net.JoinHostPort(example["HOST"], example["PORT"]) {
		t.Errorf("smithers-gateway.env.example SMITHERS_GATEWAY_UPSTREAM=%s, want the gateway's HOST:PORT", up)
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

// unitFile is a unit of deploy/reference/systemd parsed by go-systemd.
type unitFile struct {
	name string
	opts []*unit.UnitOption
}

func parseUnitFile(t *testing.T, name string) unitFile {
	t.Helper()
	f, err := os.Open(referenceFile("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return unitFile{name: name, opts: opts}
}

// one returns the single value of key in section ("" when absent).
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	var vs []string
	for _, o := range u.opts {
		if o.Section == section && o.Name == key {
			vs = append(vs, o.Value)
		}
	}
	if len(vs) > 1 {
		t.Errorf("%s: [%s] %s is set %d times", u.name, section, key, len(vs))
	}
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}
