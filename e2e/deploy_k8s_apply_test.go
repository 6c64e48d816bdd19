package e2e

// `kubectl apply -f deploy/reference/k8s/`, run for real against a
// stand-in for the Kubernetes API server. The stand-in serves discovery for
// the kinds of the folder, stores what is created, and refuses what a real
// API server refuses at this step: a namespaced object whose namespace does
// not exist (NotFound, as the NamespaceLifecycle admission answers), an
// object whose namespace differs from its URL's, and a duplicate.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
)

// TestDeployK8sApply runs the reference page's `kubectl apply -f
// deploy/reference/k8s/` from the repository root. Every object of the
// folder must be created, the Namespace before anything in it, and the
// objects the Deployment's pod needs (its ConfigMaps, the token Secret, the
// claim) must then exist, so the pod can start. The same folder with the
// namespace file sorting last must fail, which shows that the stand-in
// checks what the order is for.
func TestDeployK8sApply(t *testing.T) {
	t.Parallel()
	kubectl := needTool(t, "kubectl", "apt-get install kubernetes-client")
	m := loadK8sManifests(t)

	api := newFakeAPIServer(t)
	out, err := runKubectl(t, kubectl, api, moduleRoot, "apply", "-f", "deploy/reference/k8s/", "--validate=false")
	if err != nil {
		t.Fatalf("kubectl apply -f deploy/reference/k8s/: %v\n%s", err, out)
	}
	created := api.createdKeys()
	if len(created) != len(m.objects) {
		t.Errorf("kubectl apply created %d objects %q, want the folder's %d\n%s", len(created), created, len(m.objects), out)
	}
	if len(created) == 0 || created[0] != "Namespace/"+k8sNamespace {
		t.Errorf("kubectl apply created %q: the Namespace was not first", created)
	}
	for i, o := range m.objects {
		if i < len(created) && created[i] != o.kind+"/"+o.obj.GetName() {
			t.Errorf("object %d created: %s, want %s %s of %s (file order)", i, created[i], o.kind, o.obj.GetName(), o.file)
		}
	}
	// What the pod waits for before it can start.
	dep := api.object(t, "Deployment/smithers-gateway")
	var spec struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						EnvFrom []struct {
							ConfigMapRef struct{ Name string } `json:"configMapRef"`
						} `json:"envFrom"`
					} `json:"containers"`
					Volumes []struct {
						Secret                *struct{ SecretName string } `json:"secret"`
						ConfigMap             *struct{ Name string }       `json:"configMap"`
						PersistentVolumeClaim *struct{ ClaimName string }  `json:"persistentVolumeClaim"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(dep, &spec); err != nil {
		t.Fatal(err)
	}
	var needs []string
	for _, c := range spec.Spec.Template.Spec.Containers {
		for _, f := range c.EnvFrom {
			needs = append(needs, "ConfigMap/"+f.ConfigMapRef.Name)
		}
	}
	for _, v := range spec.Spec.Template.Spec.Volumes {
		switch {
		case v.Secret != nil:
			needs = append(needs, "Secret/"+v.Secret.SecretName)
		case v.ConfigMap != nil:
			needs = append(needs, "ConfigMap/"+v.ConfigMap.Name)
		case v.PersistentVolumeClaim != nil:
			needs = append(needs, "PersistentVolumeClaim/"+v.PersistentVolumeClaim.ClaimName)
		}
	}
	if len(needs) < 3 {
		t.Errorf("the applied Deployment references only %q", needs)
	}
	for _, key := range needs {
		if api.get(key) == nil {
			t.Errorf("after kubectl apply there is no %s, which the gateway pod needs: it would never start", key)
		}
	}

	// The namespace file sorting last: kubectl must fail.
	shuffled := t.TempDir()
	for _, o := range m.files {
		name := o
		if name == m.objects[0].file {
			name = "zz-" + name
		}
		copyFile(t, referenceFile("k8s", o), filepath.Join(shuffled, name), 0o644)
	}
	bad := newFakeAPIServer(t)
	out, err = runKubectl(t, kubectl, bad, shuffled, "apply", "-f", ".", "--validate=false")
	if err == nil || !strings.Contains(out, fmt.Sprintf("namespaces %q not found", k8sNamespace)) {
		t.Errorf("kubectl apply with the namespace file last: err %v, want namespaces %q not found:\n%s", err, k8sNamespace, out)
	}
}

// runKubectl runs kubectl in dir with a kubeconfig for api and its own
// HOME (discovery cache) and returns its combined output.
func runKubectl(t *testing.T, kubectl string, api *fakeAPIServer, dir string, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	kubeconfig := filepath.Join(home, "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: stand-in
  cluster:
    server: %s
users:
- name: stand-in
  user: {}
contexts:
- name: stand-in
  context:
    cluster: stand-in
    user: stand-in
current-context: stand-in
`, api.URL)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "KUBECONFIG=" + kubeconfig}
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// fakeResource is one kind the stand-in serves.
type fakeResource struct {
	group, version, kind, plural string
	namespaced                   bool
}

func (r fakeResource) groupVersion() string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

// fakeResources are the kinds of deploy/reference/k8s and
// deploy/replicated/k8s.
var fakeResources = []fakeResource{
	{"", "v1", "Namespace", "namespaces", false},
	{"", "v1", "ConfigMap", "configmaps", true},
	{"", "v1", "Secret", "secrets", true},
	{"", "v1", "Service", "services", true},
	{"", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true},
	{"apps", "v1", "Deployment", "deployments", true},
	{"networking.k8s.io", "v1", "Ingress", "ingresses", true},
	{"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true},
}

// fakeAPIServer is the stand-in: discovery, GET and POST of the kinds
// above, objects kept in memory by "Kind/name" (one namespace is enough:
// names are unique per kind in the folder).
type fakeAPIServer struct {
	*httptest.Server
	mu      sync.Mutex
	objects map[string]json.RawMessage
	created []string
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	t.Helper()
	s := &fakeAPIServer{objects: map[string]json.RawMessage{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeAPIServer) createdKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.created...)
}

func (s *fakeAPIServer) get(key string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objects[key]
}

func (s *fakeAPIServer) object(t *testing.T, key string) json.RawMessage {
	t.Helper()
	o := s.get(key)
	if o == nil {
		t.Fatalf("kubectl apply did not create %s", key)
	}
	return o
}

func writeAPIJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func apiStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, kind, name, msg string) {
	writeAPIJSON(w, code, metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code),
		Details: &metav1.StatusDetails{Name: name, Kind: kind},
	})
}

func (s *fakeAPIServer) serve(w http.ResponseWriter, r *http.Request) {
	p := strings.Trim(r.URL.Path, "/")
	switch p {
	case "version":
		writeAPIJSON(w, http.StatusOK, version.Info{Major: "1", Minor: "32", GitVersion: "v1.32.0"})
		return
	case "api":
		writeAPIJSON(w, http.StatusOK, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
		return
	case "apis":
		list := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		seen := map[string]bool{}
		for _, res := range fakeResources {
			if res.group == "" || seen[res.group] {
				continue
			}
			seen[res.group] = true
			gv := metav1.GroupVersionForDiscovery{GroupVersion: res.groupVersion(), Version: res.version}
			list.Groups = append(list.Groups, metav1.APIGroup{Name: res.group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv})
		}
		writeAPIJSON(w, http.StatusOK, list)
		return
	}
	var gv, rest string
	switch {
	case strings.HasPrefix(p, "api/v1"):
		gv, rest = "v1", strings.TrimPrefix(strings.TrimPrefix(p, "api/v1"), "/")
	case strings.HasPrefix(p, "apis/"):
		parts := strings.SplitN(strings.TrimPrefix(p, "apis/"), "/", 3)
		if len(parts) < 2 {
			http.NotFound(w, r)
			return
		}
		gv = parts[0] + "/" + parts[1]
		if len(parts) == 3 {
			rest = parts[2]
		}
	default:
		http.NotFound(w, r)
		return
	}
	if rest == "" { // the group version's resource list
		list := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
		for _, res := range fakeResources {
			if res.groupVersion() == gv {
				list.APIResources = append(list.APIResources, metav1.APIResource{Name: res.plural, Namespaced: res.namespaced, Kind: res.kind,
					Verbs: metav1.Verbs{"create", "delete", "get", "list", "patch", "update", "watch"}})
			}
		}
		if len(list.APIResources) == 0 {
			http.NotFound(w, r)
			return
		}
		writeAPIJSON(w, http.StatusOK, list)
		return
	}

	// [namespaces/NS/]PLURAL[/NAME]
	parts := strings.Split(rest, "/")
	ns := ""
	if len(parts) >= 3 && parts[0] == "namespaces" {
		ns, parts = parts[1], parts[2:]
	}
	var res *fakeResource
	for i := range fakeResources {
		if fakeResources[i].groupVersion() == gv && fakeResources[i].plural == parts[0] && fakeResources[i].namespaced == (ns != "") {
			res = &fakeResources[i]
		}
	}
	if res == nil || len(parts) > 2 {
		apiStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "", "", "the server could not find the requested resource")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && len(parts) == 2:
		if o, ok := s.objects[res.kind+"/"+parts[1]]; ok {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(o)
			return
		}
		apiStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, res.plural, parts[1], fmt.Sprintf("%s %q not found", res.plural, parts[1]))
	case r.Method == http.MethodPost && len(parts) == 1:
		var obj map[string]any
		if err := json.NewDecoder(r.Body).Decode(&obj); err != nil {
			apiStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, res.plural, "", err.Error())
			return
		}
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		if objNS, _ := meta["namespace"].(string); objNS != "" && objNS != ns {
			apiStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, res.plural, name, "the namespace of the provided object does not match the namespace sent on the request")
			return
		}
		if obj["kind"] != res.kind || obj["apiVersion"] != res.groupVersion() || name == "" {
			apiStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, res.plural, name, fmt.Sprintf("not a %s %s with a name", res.groupVersion(), res.kind))
			return
		}
		if ns != "" {
			if _, ok := s.objects["Namespace/"+ns]; !ok {
				apiStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "namespaces", ns, fmt.Sprintf("namespaces %q not found", ns))
				return
			}
		}
		key := res.kind + "/" + name
		if _, ok := s.objects[key]; ok {
			apiStatus(w, http.StatusConflict, metav1.StatusReasonAlreadyExists, res.plural, name, fmt.Sprintf("%s %q already exists", res.plural, name))
			return
		}
		meta["uid"] = fmt.Sprintf("00000000-0000-0000-0000-%012d", len(s.created)+1)
		meta["resourceVersion"] = fmt.Sprint(len(s.created) + 1)
		meta["creationTimestamp"] = time.Now().UTC().Format(time.RFC3339)
		if ns != "" {
			meta["namespace"] = ns
		}
		b, _ := json.Marshal(obj)
		s.objects[key] = b
		s.created = append(s.created, key)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(b)
	default:
		apiStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, res.plural, "", r.Method+" is not supported by this stand-in")
	}
}
