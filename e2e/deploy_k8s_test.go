package e2e

// Tests of deploy/reference/k8s: every manifest decoded strictly into the
// Kubernetes API types (unknown or duplicate fields fail), the objects'
// cross references checked, `kubectl apply -f deploy/reference/k8s/` run
// against an API server stand-in that refuses what a real one refuses, and
// the gateway run as the Deployment's pod would be.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// k8sNamespace is the namespace of every namespaced object.
const k8sNamespace = "smithers"

// k8sObject is one manifest document, decoded.
type k8sObject struct {
	file string
	kind string
	obj  metav1.Object
}

// k8sManifests is the folder, decoded: objects in file order (the order
// `kubectl apply -f DIR` applies them), by "Kind/name".
type k8sManifests struct {
	dir     string // relative to the repository root, for messages
	files   []string
	objects []k8sObject
	byKey   map[string]k8sObject
}

// loadK8sManifests decodes every file of deploy/reference/k8s strictly
// into the typed API objects of its apiVersion and kind.
func loadK8sManifests(t *testing.T) *k8sManifests {
	t.Helper()
	return loadK8sManifestsIn(t, referenceFile("k8s"))
}

// loadK8sManifestsIn decodes every file of the folder dir as
// loadK8sManifests does.
func loadK8sManifestsIn(t *testing.T, dir string) *k8sManifests {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	codec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &k8sManifests{dir: relPath(dir), byKey: map[string]k8sObject{}}
	for _, e := range entries {
		m.files = append(m.files, e.Name())
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			t.Errorf("%s/%s: not a .yaml manifest (kubectl apply -f would skip or fail on it)", m.dir, e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s/%s: %v", m.dir, e.Name(), err)
			}
			if j, err := yaml.YAMLToJSON(doc); err == nil && string(bytes.TrimSpace(j)) == "null" {
				continue // comments only
			}
			obj, gvk, err := codec.Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s/%s: %v", m.dir, e.Name(), err)
				continue
			}
			mo, ok := obj.(metav1.Object)
			if !ok {
				t.Errorf("%s/%s: %s has no object metadata", m.dir, e.Name(), gvk)
				continue
			}
			o := k8sObject{file: e.Name(), kind: gvk.Kind, obj: mo}
			key := o.kind + "/" + mo.GetName()
			if _, dup := m.byKey[key]; dup {
				t.Errorf("%s/%s: %s is defined twice", m.dir, e.Name(), key)
			}
			m.byKey[key] = o
			m.objects = append(m.objects, o)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// get returns the object kind/name, typed, or fails the test.
func k8sGet[T any](t *testing.T, m *k8sManifests, kind, name string) T {
	t.Helper()
	o, ok := m.byKey[kind+"/"+name]
	if !ok {
		t.Fatalf("%s has no %s %s", m.dir, kind, name)
	}
	v, ok := o.obj.(T)
	if !ok {
		t.Fatalf("%s/%s: %s %s is a %T", m.dir, o.file, kind, name, o.obj)
	}
	return v
}

// TestDeployK8sManifests checks the folder as `kubectl apply -f` reads it
// and the objects' references: the namespace file sorts first and every
// other object lives in that namespace; no kustomization; the objects the
// reference page lists exist (the names it gives included); the single
// Deployment's every ConfigMap, Secret and claim resolves to an object of
// the folder; its environment is the gateway's, its probes, port, volumes,
// read-only module and token mounts and non-root user as the image needs;
// the Service and Ingress reach it.
func TestDeployK8sManifests(t *testing.T) {
	t.Parallel()
	known := gatewayEnvVars(t)
	m := loadK8sManifests(t)

	// kubectl apply -f DIR applies the files in lexical order, and a
	// namespaced object whose namespace does not exist yet is refused.
	files := slices.Clone(m.files)
	sort.Strings(files)
	if len(m.objects) == 0 || m.objects[0].kind != "Namespace" || m.objects[0].file != files[0] {
		t.Errorf("the first file in name order (%s) does not hold the Namespace: kubectl apply -f would create objects in a namespace that does not exist yet", files[0])
	}
	for _, f := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if slices.Contains(m.files, f) {
			t.Errorf("deploy/reference/k8s/%s: the folder is applied with kubectl apply -f, not -k", f)
		}
	}
	for _, o := range m.objects {
		switch {
		case o.kind == "Namespace":
			if o.obj.GetName() != k8sNamespace {
				t.Errorf("%s: Namespace %s, want %s", o.file, o.obj.GetName(), k8sNamespace)
			}
		case o.obj.GetNamespace() != k8sNamespace:
			t.Errorf("%s: %s %s is in namespace %q, want %s", o.file, o.kind, o.obj.GetName(), o.obj.GetNamespace(), k8sNamespace)
		}
	}
	// What the reference page lists, in the files it names.
	for _, want := range []struct{ kind, name, file string }{
		{"Namespace", k8sNamespace, ""},
		{"Deployment", "smithers-gateway", ""},
		{"ConfigMap", "smithers-gateway-config", ""},
		{"PersistentVolumeClaim", "smithers-sqlite", ""},
		{"Secret", "smithers-gateway-tokens", "secret.example.yaml"},
		{"Service", "smithers-gateway", ""},
		{"Ingress", "smithers-gateway", "ingress.yaml"},
	} {
		o, ok := m.byKey[want.kind+"/"+want.name]
		if !ok {
			t.Errorf("deploy/reference/k8s has no %s %s", want.kind, want.name)
		} else if want.file != "" && o.file != want.file {
			t.Errorf("%s %s is in %s, want %s (the file the reference page names)", want.kind, want.name, o.file, want.file)
		}
	}
	var deployments []string
	for _, o := range m.objects {
		if o.kind == "Deployment" {
			deployments = append(deployments, o.obj.GetName())
		}
	}
	if len(deployments) != 1 {
		t.Fatalf("deploy/reference/k8s has Deployments %q, want exactly one", deployments)
	}

	dep := k8sGet[*appsv1.Deployment](t, m, "Deployment", "smithers-gateway")
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		t.Errorf("Deployment replicas %v, want 1 (SQLite has one writer)", dep.Spec.Replicas)
	}
	if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("Deployment strategy %q, want Recreate (never two pods on the database)", dep.Spec.Strategy.Type)
	}
	if sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector); err != nil || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("Deployment selector %v does not select its own pod template's labels %v (%v)", dep.Spec.Selector, dep.Spec.Template.Labels, err)
	}
	pod := dep.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != 65532 || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext %+v, want runAsNonRoot with the image's user 65532", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %+v, want a read-only root filesystem and no privilege escalation", sc)
	}

	// Environment: envFrom ConfigMaps (the SMITHERS_GATEWAY_ tunables, with
	// the gateway's defaults), then env.
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			t.Errorf("envFrom %+v is not a ConfigMap", from)
			continue
		}
		cm := k8sGet[*corev1.ConfigMap](t, m, "ConfigMap", from.ConfigMapRef.Name)
		for name, v := range cm.Data {
			if !strings.HasPrefix(name, "SMITHERS_GATEWAY_") {
				t.Errorf("ConfigMap %s sets %s: it holds the SMITHERS_GATEWAY_ tunables", cm.Name, name)
			}
			checkGatewayVar(t, known, "ConfigMap "+cm.Name, name, v, true)
			env[name] = v
		}
	}
	for _, e := range c.Env {
		checkGatewayVar(t, known, "Deployment env", e.Name, e.Value, false)
		if e.ValueFrom != nil {
			t.Errorf("Deployment env %s takes its value from elsewhere; set it literally", e.Name)
		}
		env[e.Name] = e.Value
	}
	for _, name := range requiredDeployVars {
		if _, ok := env[name]; !ok {
			t.Errorf("Deployment env does not set %s", name)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || fmt.Sprint(c.Ports[0].ContainerPort) != env["PORT"] {
		t.Errorf("container ports %+v, want one named http = PORT %s", c.Ports, env["PORT"])
	}
	for name, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s %+v, want GET /health on http", name, p)
		}
	}
	if !slices.Equal(c.Args, []string{"gateway"}) {
		t.Errorf("container args %q, want [gateway] (the image's entrypoint is /smithers)", c.Args)
	}

	// Each path variable lives in the volume mounted at its directory; every
	// volume's source is an object of the folder.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		switch {
		case v.PersistentVolumeClaim != nil:
			k8sGet[*corev1.PersistentVolumeClaim](t, m, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
		case v.Secret != nil:
			k8sGet[*corev1.Secret](t, m, "Secret", v.Secret.SecretName)
		case v.ConfigMap != nil:
			k8sGet[*corev1.ConfigMap](t, m, "ConfigMap", v.ConfigMap.Name)
		case v.EmptyDir != nil:
		default:
			t.Errorf("volume %s is neither a claim, Secret, ConfigMap nor emptyDir of this folder", v.Name)
		}
	}
	mounts := map[string]corev1.VolumeMount{} // by mountPath
	for _, vm := range c.VolumeMounts {
		if vm.SubPath != "" {
			t.Errorf("volumeMount %s uses subPath, which never sees updates", vm.Name)
		}
		if _, ok := volumes[vm.Name]; !ok {
			t.Errorf("volumeMount %s names no volume", vm.Name)
		}
		mounts[vm.MountPath] = vm
	}
	volumeAt := func(envName string) (corev1.Volume, corev1.VolumeMount) {
		t.Helper()
		dir := path.Dir(env[envName])
		vm, ok := mounts[dir]
		if !ok {
			t.Fatalf("%s=%s: nothing is mounted at %s", envName, env[envName], dir)
		}
		return volumes[vm.Name], vm
	}
	if dataVol, _ := volumeAt("SMITHERS_DB_PATH"); dataVol.PersistentVolumeClaim == nil || dataVol.PersistentVolumeClaim.ClaimName != "smithers-sqlite" {
		t.Errorf("the database volume is %+v, want the PVC smithers-sqlite", dataVol.VolumeSource)
	}
	tokVol, tokMount := volumeAt("SMITHERS_TOKEN_STORE")
	if tokVol.Secret == nil || tokVol.Secret.SecretName != "smithers-gateway-tokens" || !tokMount.ReadOnly || tokMount.MountPath != "/var/run/smithers" {
		t.Errorf("the token store's volume %+v at %s (read-only %v), want the Secret smithers-gateway-tokens read-only at /var/run/smithers", tokVol.VolumeSource, tokMount.MountPath, tokMount.ReadOnly)
	} else {
		secret := k8sGet[*corev1.Secret](t, m, "Secret", tokVol.Secret.SecretName)
		if _, ok := secret.StringData[path.Base(env["SMITHERS_TOKEN_STORE"])]; !ok {
			t.Errorf("Secret %s has no stringData key %s, the file SMITHERS_TOKEN_STORE names", secret.Name, path.Base(env["SMITHERS_TOKEN_STORE"]))
		}
	}
	modVol, modMount := volumeAt("SMITHERS_GATEWAY_MODULE")
	if modVol.ConfigMap == nil || !modMount.ReadOnly {
		t.Errorf("the module volume %+v at %s (read-only %v), want a ConfigMap mounted read-only", modVol.VolumeSource, modMount.MountPath, modMount.ReadOnly)
	} else if _, ok := k8sGet[*corev1.ConfigMap](t, m, "ConfigMap", modVol.ConfigMap.Name).Data[path.Base(env["SMITHERS_GATEWAY_MODULE"])]; !ok {
		t.Errorf("ConfigMap %s has no %s", modVol.ConfigMap.Name, path.Base(env["SMITHERS_GATEWAY_MODULE"]))
	}

	svc := k8sGet[*corev1.Service](t, m, "Service", "smithers-gateway")
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select the pod labels %v", svc.Spec.Selector, dep.Spec.Template.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v, want 80 -> http", svc.Spec.Ports)
	}
	ing := k8sGet[*networkingv1.Ingress](t, m, "Ingress", "smithers-gateway")
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].HTTP == nil || len(ing.Spec.Rules[0].HTTP.Paths) != 1 {
		t.Fatalf("Ingress rules %+v, want one host with one path", ing.Spec.Rules)
	}
	backend := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	if backend == nil || backend.Name != svc.Name || backend.Port.Name != svc.Spec.Ports[0].Name {
		t.Errorf("Ingress backend %+v, want service %s port %s", backend, svc.Name, svc.Spec.Ports[0].Name)
	}
	if len(ing.Spec.TLS) != 1 || !slices.Equal(ing.Spec.TLS[0].Hosts, []string{ing.Spec.Rules[0].Host}) {
		t.Errorf("Ingress TLS %+v does not cover its host %s", ing.Spec.TLS, ing.Spec.Rules[0].Host)
	}
	for _, a := range []string{"cert-manager.io/cluster-issuer", "nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
		if _, ok := ing.Annotations[a]; !ok {
			t.Errorf("Ingress has no annotation %s", a)
		}
	}
}

// TestDeployK8sPod runs the gateway as the Deployment's pod would run: its
// args, its envFrom and env, every volume laid out at its mount path (the
// module ConfigMap read-only, the Secret as the kubelet projects one, the
// claim empty). With secret.example.yaml as it ships, the pod starts and
// is ready, the example store is valid and its expired example token is
// refused; a Secret replaced with an issued store lets its token in
// without a restart, and a rotation (revoke one, issue another) too.
func TestDeployK8sPod(t *testing.T) {
	t.Parallel()
	m := loadK8sManifests(t)
	dep := k8sGet[*appsv1.Deployment](t, m, "Deployment", "smithers-gateway")
	c := dep.Spec.Template.Spec.Containers[0]

	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, from := range c.EnvFrom {
		cm := k8sGet[*corev1.ConfigMap](t, m, "ConfigMap", from.ConfigMapRef.Name)
		keys := make([]string, 0, len(cm.Data))
		for k := range cm.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(k, cm.Data[k])
		}
	}
	for _, e := range c.Env {
		set(e.Name, e.Value)
	}

	tmp := t.TempDir()
	volumes := map[string]corev1.Volume{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	local := pathRemap{}
	var secretDir string
	var secret *corev1.Secret
	for i, vm := range c.VolumeMounts {
		dir := filepath.Join(tmp, fmt.Sprintf("vol%d-%s", i, vm.Name))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		local[vm.MountPath] = dir
		v := volumes[vm.Name]
		switch {
		case v.ConfigMap != nil:
			for k, data := range k8sGet[*corev1.ConfigMap](t, m, "ConfigMap", v.ConfigMap.Name).Data {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(data), 0o444); err != nil {
					t.Fatal(err)
				}
			}
		case v.Secret != nil:
			secret = k8sGet[*corev1.Secret](t, m, "Secret", v.Secret.SecretName)
			secretDir = dir
			files := map[string][]byte{}
			for k, data := range secret.StringData {
				files[k] = []byte(data)
			}
			for k, data := range secret.Data {
				files[k] = data
			}
			projectSecret(t, dir, files, 1)
		}
		if vm.ReadOnly {
			makeReadOnlyDir(t, dir)
		}
	}
	if secret == nil {
		t.Fatalf("the pod mounts no Secret")
	}
	tokenKey := path.Base(env["SMITHERS_TOKEN_STORE"])
	var example struct {
		Tokens map[string]json.RawMessage `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(secret.StringData[tokenKey]), &example); err != nil || len(example.Tokens) == 0 {
		t.Fatalf("secret.example.yaml %s is not a token store with an example token: %v", tokenKey, err)
	}

	procEnv := baseEnv(tmp)
	for _, name := range order {
		v := local.apply(env[name])
		switch name {
		case "HOST":
			v = "127.0.0.1"
		case "PORT":
			v = "0"
		}
		procEnv = append(procEnv, name+"="+v)
	}
	g := startBinaryGateway(t, binPath, tmp, procEnv, c.Args...)
	checkHealth(t, g.URL) // the readiness probe (TestDeployK8sManifests checks its path)
	// The example store is read (an unreadable one would refuse every
	// token as "unavailable"), and its example grant is refused as expired.
	for tok := range example.Tokens {
		status, f := postRPC(t, g.URL, tok, "listWorkflows", map[string]any{})
		if status != http.StatusUnauthorized || f.Error == nil || !strings.Contains(strings.ToLower(f.Error.Message), "expired") {
			t.Errorf("the example token of secret.example.yaml: HTTP %d %+v, want 401 because it has expired", status, f.Error)
		}
	}
	if hasLog(g.Stderr(), "ERROR", "token store") {
		t.Errorf("the gateway does not read secret.example.yaml's %s as a token store:\n%s", tokenKey, g.Stderr())
	}

	// The example replaced by an issued store (the Secret re-applied: the
	// kubelet swaps the ..data symlink to a new directory).
	scratch := filepath.Join(t.TempDir(), tokenKey)
	tokA := issueToken(t, scratch)
	projectSecretFile(t, secretDir, tokenKey, scratch, 2)
	g.Token = tokA
	eventually(t, 10*time.Second, "the replaced Secret's token to be accepted", func() bool { return authorized(t, g, tokA) })
	var workflows []struct {
		Key string `json:"key"`
	}
	decode(t, g.rpc("listWorkflows", map[string]any{}), &workflows)
	if len(workflows) == 0 {
		t.Fatalf("the module ConfigMap's module registers no workflow")
	}
	runID := g.launch(workflows[0].Key, map[string]any{"name": "k8s"})
	if r := g.getRun(runID); isTerminal(r.Status) && r.Status != "finished" {
		t.Errorf("the module's workflow %s ended %s: %s", workflows[0].Key, r.Status, deref(r.ErrorJSON))
	}

	// Rotate: token A revoked, token B issued.
	revokeToken(t, scratch, tokA)
	tokB := issueToken(t, scratch)
	projectSecretFile(t, secretDir, tokenKey, scratch, 3)
	eventually(t, 10*time.Second, "the rotated Secret to take effect", func() bool {
		sa, _ := postRPC(t, g.URL, tokA, "listWorkflows", map[string]any{})
		sb, _ := postRPC(t, g.URL, tokB, "listWorkflows", map[string]any{})
		return sa == http.StatusUnauthorized && sb == http.StatusOK
	})
}

// projectSecret lays out dir as the kubelet does for a Secret volume: a
// timestamped directory with the files, the ..data symlink to it (swapped
// atomically by rename on an update), and key -> ..data/key for each key.
func projectSecret(t *testing.T, dir string, files map[string][]byte, generation int) {
	t.Helper()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Chmod(dir, 0o555) }()
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", generation, generation)
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for key, data := range files {
		if err := os.WriteFile(filepath.Join(dir, ts, key), data, 0o440); err != nil {
			t.Fatal(err)
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(ts, tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
	for key := range files {
		if _, err := os.Lstat(filepath.Join(dir, key)); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)); err != nil {
			t.Fatal(err)
		}
	}
}

// projectSecretFile projects the file src as the Secret's key.
func projectSecretFile(t *testing.T, dir, key, src string, generation int) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	projectSecret(t, dir, map[string][]byte{key: b}, generation)
}
