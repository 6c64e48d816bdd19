package e2e

// Tests of deploy/Dockerfile, the image every reference artefact runs. The
// Dockerfile is read with BuildKit's own parser (the one `docker build`
// uses), its build context is filtered with Docker's own .dockerignore
// matcher, and the build command of its build stage is run here.

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestDeployDockerStaticBuild runs the build stage's `go build` command,
// word for word, on the context deploy/Dockerfile.dockerignore leaves,
// checks that the binary is statically linked, and runs it with exactly the
// environment the image gives it: the module in a read-only "mounted"
// directory, data in a "volume", the image's CMD. SIGTERM ends it with 0.
func TestDeployDockerStaticBuild(t *testing.T) {
	t.Parallel()
	df := parseDockerfile(t)
	buildEnv, buildArgs, out := df.goBuildCommand(t)
	runtime := df.final()

	ctxDir := filepath.Join(t.TempDir(), "src")
	copyBuildContext(t, ctxDir)
	bin := filepath.Join(t.TempDir(), "smithers")
	args := slices.Clone(buildArgs)
	args[slices.Index(args, out)] = bin
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = ctxDir
	// As in the golang image: no toolchain download; then the RUN line's own
	// assignments (CGO_ENABLED=0).
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
	build.Env = append(build.Env, buildEnv...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build command (go %s) failed in the filtered build context: %v\n%s", strings.Join(buildArgs, " "), err, out)
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

	checkHealth(t, g.URL)
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

// TestDeployDockerfile checks the image's stages: the Go that go.mod asks
// for, the distroless default without a HEALTHCHECK it could not run, the
// shell variant with one, and in both the gateway's variables with its
// defaults, one VOLUME holding the database and the token store, the port,
// a numeric non-root user, and `/smithers gateway` as entrypoint and command.
func TestDeployDockerfile(t *testing.T) {
	t.Parallel()
	known := gatewayEnvVars(t)
	df := parseDockerfile(t)

	// The build stage: the golang images set GOTOOLCHAIN=local, so a Go
	// older than go.mod's fails the build.
	build := df.stage(t, "build")
	base := df.baseImage(t, build)
	if !strings.HasPrefix(base, "golang:") {
		t.Errorf("build stage FROM %s, want a golang image", base)
	}
	goVersion, _, _ := strings.Cut(strings.TrimPrefix(base, "golang:"), "-")
	if want := goModVersion(t); compareVersions(goVersion, want) < 0 {
		t.Errorf("build stage uses Go %s, but go.mod requires %s", goVersion, want)
	}
	if env, args, _ := df.goBuildCommand(t); !slices.Contains(env, "CGO_ENABLED=0") || !slices.Contains(args, "./cmd/smithers") {
		t.Errorf("build stage's go build: env %q args %q, want CGO_ENABLED=0 building ./cmd/smithers", env, args)
	}

	final := df.final()
	if b := df.baseImage(t, final); b != "gcr.io/distroless/static-debian12:nonroot" || final.Name != "runtime" {
		t.Errorf("final (default) stage is FROM %s AS %q, want gcr.io/distroless/static-debian12:nonroot AS runtime", b, final.Name)
	}
	if len(commandsOf[*instructions.HealthCheckCommand](final)) > 0 {
		t.Errorf("the distroless stage has a HEALTHCHECK, which it cannot run (no shell, no client)")
	}
	shellStage := df.stage(t, "runtime-with-shell")
	if hc := commandsOf[*instructions.HealthCheckCommand](shellStage); len(hc) != 1 || !strings.Contains(strings.Join(hc[0].Health.Test, " "), "/health") {
		t.Errorf("runtime-with-shell has %d HEALTHCHECKs, want one probing /health", len(hc))
	}
	finalEnv, _ := final.env(t)
	for _, st := range []dockerStage{final, shellStage} {
		env, _ := st.env(t)
		for name, v := range env {
			checkGatewayVar(t, known, "deploy/Dockerfile stage "+st.Name+" ENV", name, v, true)
		}
		for _, name := range requiredDeployVars {
			if _, ok := env[name]; !ok {
				t.Errorf("stage %s sets no ENV %s", st.Name, name)
			}
		}
		dataDir := path.Dir(env["SMITHERS_DB_PATH"])
		var volumes, exposed, users []string
		for _, c := range commandsOf[*instructions.VolumeCommand](st) {
			volumes = append(volumes, c.Volumes...)
		}
		for _, c := range commandsOf[*instructions.ExposeCommand](st) {
			exposed = append(exposed, c.Ports...)
		}
		for _, c := range commandsOf[*instructions.UserCommand](st) {
			users = append(users, c.User)
		}
		if !slices.Equal(volumes, []string{dataDir}) || path.Dir(env["SMITHERS_TOKEN_STORE"]) != dataDir {
			t.Errorf("stage %s: VOLUME %q, want exactly the directory of SMITHERS_DB_PATH and SMITHERS_TOKEN_STORE (%s)", st.Name, volumes, dataDir)
		}
		if !slices.Equal(exposed, []string{env["PORT"]}) {
			t.Errorf("stage %s: EXPOSE %q, want PORT %s", st.Name, exposed, env["PORT"])
		}
		if !slices.Equal(users, []string{"65532:65532"}) {
			t.Errorf("stage %s: USER %q, want 65532:65532 (numeric, for runAsNonRoot)", st.Name, users)
		}
		entry, cmd := st.execForm(t, "ENTRYPOINT"), st.execForm(t, "CMD")
		if !slices.Equal(entry, []string{"/smithers"}) || !slices.Equal(cmd, []string{"gateway"}) {
			t.Errorf("stage %s: ENTRYPOINT %q CMD %q, want [/smithers] [gateway]", st.Name, entry, cmd)
		}
		var binary, data bool
		for _, c := range commandsOf[*instructions.CopyCommand](st) {
			src := strings.Join(c.SourcePaths, " ")
			binary = binary || (c.From == "build" && src == "/out/smithers" && c.DestPath == entry[0])
			data = data || (c.From == "build" && c.Chown == "65532:65532" && c.DestPath == dataDir)
		}
		if !binary {
			t.Errorf("stage %s does not COPY --from=build /out/smithers to %s", st.Name, entry[0])
		}
		if !data {
			t.Errorf("stage %s does not create %s owned by the runtime user (COPY --from=build --chown=65532:65532 ... %s)", st.Name, dataDir, dataDir)
		}
		if fmt.Sprint(env) != fmt.Sprint(finalEnv) {
			t.Errorf("stage %s ENV %v differs from the default stage's %v", st.Name, env, finalEnv)
		}
	}
}

// ---- Dockerfile ---------------------------------------------------------------

// dockerfile is deploy/Dockerfile as BuildKit reads it.
type dockerfile struct {
	stages []dockerStage
	args   mapEnv // global ARGs (before the first FROM) with their defaults
}

type dockerStage struct{ instructions.Stage }

// parseDockerfile parses deploy/Dockerfile with BuildKit's parser and its
// instruction linter; parser and lint warnings fail the test.
func parseDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	f, err := os.Open(deployFile("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("deploy/Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("deploy/Dockerfile: parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		t.Errorf("deploy/Dockerfile:%d: lint %s: %s", line, rule, msg)
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("deploy/Dockerfile: %v", err)
	}
	if len(stages) == 0 {
		t.Fatalf("deploy/Dockerfile has no FROM")
	}
	df := &dockerfile{args: mapEnv{}}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				df.args[kv.Key] = *kv.Value
			}
		}
	}
	for _, st := range stages {
		df.stages = append(df.stages, dockerStage{st})
	}
	return df
}

// mapEnv is a shell.EnvGetter over a map.
type mapEnv map[string]string

func (m mapEnv) Get(key string) (string, bool) { v, ok := m[key]; return v, ok }

func (m mapEnv) Keys() []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// baseImage is the stage's FROM image with the global ARGs expanded.
func (df *dockerfile) baseImage(t *testing.T, st dockerStage) string {
	t.Helper()
	word, _, err := shell.NewLex('\\').ProcessWord(st.BaseName, df.args)
	if err != nil {
		t.Fatalf("deploy/Dockerfile: FROM %s: %v", st.BaseName, err)
	}
	return word
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

// final is the stage `docker build` builds without --target.
func (df *dockerfile) final() dockerStage { return df.stages[len(df.stages)-1] }

// goBuildCommand finds the build stage's one RUN with `go build` and splits
// it as the shell would: leading NAME=value assignments, then the go
// command's arguments. out is the -o argument.
func (df *dockerfile) goBuildCommand(t *testing.T) (env, args []string, out string) {
	t.Helper()
	var found []string
	for _, run := range commandsOf[*instructions.RunCommand](df.stage(t, "build")) {
		line := strings.Join(run.CmdLine, " ")
		if strings.Contains(line, "go build") {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		t.Fatalf("deploy/Dockerfile build stage: %d RUN lines with go build, want 1", len(found))
	}
	if strings.ContainsAny(found[0], "&|;<>`$") {
		t.Fatalf("deploy/Dockerfile: the go build RUN %q is more than one simple command; this test runs it word for word", found[0])
	}
	words, err := shell.NewLex('\\').ProcessWords(found[0], mapEnv{})
	if err != nil {
		t.Fatalf("deploy/Dockerfile: split %q: %v", found[0], err)
	}
	for len(words) > 0 && strings.Contains(words[0], "=") {
		env, words = append(env, words[0]), words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("deploy/Dockerfile: %q does not run go build", found[0])
	}
	args = words[1:]
	i := slices.Index(args, "-o")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("deploy/Dockerfile: go build %q has no -o", args)
	}
	return env, args, args[i+1]
}

// commandsOf returns the stage's instructions of type C, in order.
func commandsOf[C instructions.Command](st dockerStage) []C {
	var out []C
	for _, c := range st.Commands {
		if cc, ok := c.(C); ok {
			out = append(out, cc)
		}
	}
	return out
}

// env returns the stage's ENV and its order; values are taken literally, so
// an ENV that refers to a variable fails the test.
func (s dockerStage) env(t *testing.T) (map[string]string, []string) {
	t.Helper()
	env := map[string]string{}
	var order []string
	for _, c := range commandsOf[*instructions.EnvCommand](s) {
		for _, kv := range c.Env {
			if strings.Contains(kv.Value, "$") {
				t.Fatalf("deploy/Dockerfile stage %s: ENV %s=%s refers to a variable; this test reads values literally", s.Name, kv.Key, kv.Value)
			}
			if _, dup := env[kv.Key]; !dup {
				order = append(order, kv.Key)
			}
			env[kv.Key] = kv.Value
		}
	}
	return env, order
}

// execForm returns the arguments of the stage's single ENTRYPOINT or CMD,
// which must be in the exec (JSON) form.
func (s dockerStage) execForm(t *testing.T, instr string) []string {
	t.Helper()
	var lines []instructions.ShellDependantCmdLine
	switch instr {
	case "ENTRYPOINT":
		for _, c := range commandsOf[*instructions.EntrypointCommand](s) {
			lines = append(lines, c.ShellDependantCmdLine)
		}
	case "CMD":
		for _, c := range commandsOf[*instructions.CmdCommand](s) {
			lines = append(lines, c.ShellDependantCmdLine)
		}
	default:
		t.Fatalf("execForm: %s", instr)
	}
	if len(lines) != 1 {
		t.Fatalf("deploy/Dockerfile stage %s has %d %s instructions, want 1", s.Name, len(lines), instr)
	}
	if lines[0].PrependShell {
		t.Fatalf("deploy/Dockerfile stage %s: %s is in the shell form, want the exec (JSON) form", s.Name, instr)
	}
	return lines[0].CmdLine
}

// copyBuildContext copies the repository into dst as `docker build .`
// sends it, leaving out what deploy/Dockerfile.dockerignore excludes, with
// Docker's own pattern matcher.
func copyBuildContext(t *testing.T, dst string) {
	t.Helper()
	f, err := os.Open(deployFile("Dockerfile.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatalf("deploy/Dockerfile.dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf("deploy/Dockerfile.dockerignore: %v", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(moduleRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(moduleRoot, p)
		if err != nil || rel == "." {
			return err
		}
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if excluded {
			// A directory may hold re-included files only with ! patterns.
			if d.IsDir() && !pm.Exclusions() {
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
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
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
	for _, gone := range []string{".git", "deploy"} {
		if _, err := os.Stat(filepath.Join(dst, gone)); err == nil {
			t.Errorf("the build context still holds %s", gone)
		}
	}
}
